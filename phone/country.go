package phone

import "strings"

// alpha3To2 is ISO 3166-1: every officially assigned alpha-3 code and its
// alpha-2 code (249 entries, as published in the iso-codes 4.15 data set),
// plus XKX for Kosovo. Kosovo has no official code, but XK/XKX are the
// user-assigned codes the EU and most registries use, and libphonenumber
// knows its numbers (+383) under XK, so refusing XKX would refuse a real
// country.
var alpha3To2 = map[string]string{
	"ABW": "AW", // Aruba
	"AFG": "AF", // Afghanistan
	"AGO": "AO", // Angola
	"AIA": "AI", // Anguilla
	"ALA": "AX", // Åland Islands
	"ALB": "AL", // Albania
	"AND": "AD", // Andorra
	"ARE": "AE", // United Arab Emirates
	"ARG": "AR", // Argentina
	"ARM": "AM", // Armenia
	"ASM": "AS", // American Samoa
	"ATA": "AQ", // Antarctica
	"ATF": "TF", // French Southern Territories
	"ATG": "AG", // Antigua and Barbuda
	"AUS": "AU", // Australia
	"AUT": "AT", // Austria
	"AZE": "AZ", // Azerbaijan
	"BDI": "BI", // Burundi
	"BEL": "BE", // Belgium
	"BEN": "BJ", // Benin
	"BES": "BQ", // Bonaire, Sint Eustatius and Saba
	"BFA": "BF", // Burkina Faso
	"BGD": "BD", // Bangladesh
	"BGR": "BG", // Bulgaria
	"BHR": "BH", // Bahrain
	"BHS": "BS", // Bahamas
	"BIH": "BA", // Bosnia and Herzegovina
	"BLM": "BL", // Saint Barthélemy
	"BLR": "BY", // Belarus
	"BLZ": "BZ", // Belize
	"BMU": "BM", // Bermuda
	"BOL": "BO", // Bolivia
	"BRA": "BR", // Brazil
	"BRB": "BB", // Barbados
	"BRN": "BN", // Brunei Darussalam
	"BTN": "BT", // Bhutan
	"BVT": "BV", // Bouvet Island
	"BWA": "BW", // Botswana
	"CAF": "CF", // Central African Republic
	"CAN": "CA", // Canada
	"CCK": "CC", // Cocos (Keeling) Islands
	"CHE": "CH", // Switzerland
	"CHL": "CL", // Chile
	"CHN": "CN", // China
	"CIV": "CI", // Côte d'Ivoire
	"CMR": "CM", // Cameroon
	"COD": "CD", // Congo, The Democratic Republic of the
	"COG": "CG", // Congo
	"COK": "CK", // Cook Islands
	"COL": "CO", // Colombia
	"COM": "KM", // Comoros
	"CPV": "CV", // Cabo Verde
	"CRI": "CR", // Costa Rica
	"CUB": "CU", // Cuba
	"CUW": "CW", // Curaçao
	"CXR": "CX", // Christmas Island
	"CYM": "KY", // Cayman Islands
	"CYP": "CY", // Cyprus
	"CZE": "CZ", // Czechia
	"DEU": "DE", // Germany
	"DJI": "DJ", // Djibouti
	"DMA": "DM", // Dominica
	"DNK": "DK", // Denmark
	"DOM": "DO", // Dominican Republic
	"DZA": "DZ", // Algeria
	"ECU": "EC", // Ecuador
	"EGY": "EG", // Egypt
	"ERI": "ER", // Eritrea
	"ESH": "EH", // Western Sahara
	"ESP": "ES", // Spain
	"EST": "EE", // Estonia
	"ETH": "ET", // Ethiopia
	"FIN": "FI", // Finland
	"FJI": "FJ", // Fiji
	"FLK": "FK", // Falkland Islands (Malvinas)
	"FRA": "FR", // France
	"FRO": "FO", // Faroe Islands
	"FSM": "FM", // Micronesia, Federated States of
	"GAB": "GA", // Gabon
	"GBR": "GB", // United Kingdom
	"GEO": "GE", // Georgia
	"GGY": "GG", // Guernsey
	"GHA": "GH", // Ghana
	"GIB": "GI", // Gibraltar
	"GIN": "GN", // Guinea
	"GLP": "GP", // Guadeloupe
	"GMB": "GM", // Gambia
	"GNB": "GW", // Guinea-Bissau
	"GNQ": "GQ", // Equatorial Guinea
	"GRC": "GR", // Greece
	"GRD": "GD", // Grenada
	"GRL": "GL", // Greenland
	"GTM": "GT", // Guatemala
	"GUF": "GF", // French Guiana
	"GUM": "GU", // Guam
	"GUY": "GY", // Guyana
	"HKG": "HK", // Hong Kong
	"HMD": "HM", // Heard Island and McDonald Islands
	"HND": "HN", // Honduras
	"HRV": "HR", // Croatia
	"HTI": "HT", // Haiti
	"HUN": "HU", // Hungary
	"IDN": "ID", // Indonesia
	"IMN": "IM", // Isle of Man
	"IND": "IN", // India
	"IOT": "IO", // British Indian Ocean Territory
	"IRL": "IE", // Ireland
	"IRN": "IR", // Iran
	"IRQ": "IQ", // Iraq
	"ISL": "IS", // Iceland
	"ISR": "IL", // Israel
	"ITA": "IT", // Italy
	"JAM": "JM", // Jamaica
	"JEY": "JE", // Jersey
	"JOR": "JO", // Jordan
	"JPN": "JP", // Japan
	"KAZ": "KZ", // Kazakhstan
	"KEN": "KE", // Kenya
	"KGZ": "KG", // Kyrgyzstan
	"KHM": "KH", // Cambodia
	"KIR": "KI", // Kiribati
	"KNA": "KN", // Saint Kitts and Nevis
	"KOR": "KR", // South Korea
	"KWT": "KW", // Kuwait
	"LAO": "LA", // Laos
	"LBN": "LB", // Lebanon
	"LBR": "LR", // Liberia
	"LBY": "LY", // Libya
	"LCA": "LC", // Saint Lucia
	"LIE": "LI", // Liechtenstein
	"LKA": "LK", // Sri Lanka
	"LSO": "LS", // Lesotho
	"LTU": "LT", // Lithuania
	"LUX": "LU", // Luxembourg
	"LVA": "LV", // Latvia
	"MAC": "MO", // Macao
	"MAF": "MF", // Saint Martin (French part)
	"MAR": "MA", // Morocco
	"MCO": "MC", // Monaco
	"MDA": "MD", // Moldova
	"MDG": "MG", // Madagascar
	"MDV": "MV", // Maldives
	"MEX": "MX", // Mexico
	"MHL": "MH", // Marshall Islands
	"MKD": "MK", // North Macedonia
	"MLI": "ML", // Mali
	"MLT": "MT", // Malta
	"MMR": "MM", // Myanmar
	"MNE": "ME", // Montenegro
	"MNG": "MN", // Mongolia
	"MNP": "MP", // Northern Mariana Islands
	"MOZ": "MZ", // Mozambique
	"MRT": "MR", // Mauritania
	"MSR": "MS", // Montserrat
	"MTQ": "MQ", // Martinique
	"MUS": "MU", // Mauritius
	"MWI": "MW", // Malawi
	"MYS": "MY", // Malaysia
	"MYT": "YT", // Mayotte
	"NAM": "NA", // Namibia
	"NCL": "NC", // New Caledonia
	"NER": "NE", // Niger
	"NFK": "NF", // Norfolk Island
	"NGA": "NG", // Nigeria
	"NIC": "NI", // Nicaragua
	"NIU": "NU", // Niue
	"NLD": "NL", // Netherlands
	"NOR": "NO", // Norway
	"NPL": "NP", // Nepal
	"NRU": "NR", // Nauru
	"NZL": "NZ", // New Zealand
	"OMN": "OM", // Oman
	"PAK": "PK", // Pakistan
	"PAN": "PA", // Panama
	"PCN": "PN", // Pitcairn
	"PER": "PE", // Peru
	"PHL": "PH", // Philippines
	"PLW": "PW", // Palau
	"PNG": "PG", // Papua New Guinea
	"POL": "PL", // Poland
	"PRI": "PR", // Puerto Rico
	"PRK": "KP", // North Korea
	"PRT": "PT", // Portugal
	"PRY": "PY", // Paraguay
	"PSE": "PS", // Palestine, State of
	"PYF": "PF", // French Polynesia
	"QAT": "QA", // Qatar
	"REU": "RE", // Réunion
	"ROU": "RO", // Romania
	"RUS": "RU", // Russian Federation
	"RWA": "RW", // Rwanda
	"SAU": "SA", // Saudi Arabia
	"SDN": "SD", // Sudan
	"SEN": "SN", // Senegal
	"SGP": "SG", // Singapore
	"SGS": "GS", // South Georgia and the South Sandwich Islands
	"SHN": "SH", // Saint Helena, Ascension and Tristan da Cunha
	"SJM": "SJ", // Svalbard and Jan Mayen
	"SLB": "SB", // Solomon Islands
	"SLE": "SL", // Sierra Leone
	"SLV": "SV", // El Salvador
	"SMR": "SM", // San Marino
	"SOM": "SO", // Somalia
	"SPM": "PM", // Saint Pierre and Miquelon
	"SRB": "RS", // Serbia
	"SSD": "SS", // South Sudan
	"STP": "ST", // Sao Tome and Principe
	"SUR": "SR", // Suriname
	"SVK": "SK", // Slovakia
	"SVN": "SI", // Slovenia
	"SWE": "SE", // Sweden
	"SWZ": "SZ", // Eswatini
	"SXM": "SX", // Sint Maarten (Dutch part)
	"SYC": "SC", // Seychelles
	"SYR": "SY", // Syria
	"TCA": "TC", // Turks and Caicos Islands
	"TCD": "TD", // Chad
	"TGO": "TG", // Togo
	"THA": "TH", // Thailand
	"TJK": "TJ", // Tajikistan
	"TKL": "TK", // Tokelau
	"TKM": "TM", // Turkmenistan
	"TLS": "TL", // Timor-Leste
	"TON": "TO", // Tonga
	"TTO": "TT", // Trinidad and Tobago
	"TUN": "TN", // Tunisia
	"TUR": "TR", // Türkiye
	"TUV": "TV", // Tuvalu
	"TWN": "TW", // Taiwan
	"TZA": "TZ", // Tanzania
	"UGA": "UG", // Uganda
	"UKR": "UA", // Ukraine
	"UMI": "UM", // United States Minor Outlying Islands
	"URY": "UY", // Uruguay
	"USA": "US", // United States
	"UZB": "UZ", // Uzbekistan
	"VAT": "VA", // Holy See (Vatican City State)
	"VCT": "VC", // Saint Vincent and the Grenadines
	"VEN": "VE", // Venezuela
	"VGB": "VG", // Virgin Islands, British
	"VIR": "VI", // Virgin Islands, U.S.
	"VNM": "VN", // Vietnam
	"VUT": "VU", // Vanuatu
	"WLF": "WF", // Wallis and Futuna
	"WSM": "WS", // Samoa
	"YEM": "YE", // Yemen
	"ZAF": "ZA", // South Africa
	"ZMB": "ZM", // Zambia
	"ZWE": "ZW", // Zimbabwe
	"XKX": "XK", // Kosovo (user-assigned)
}

// alpha2 holds every alpha-2 code Alpha2 accepts: those of alpha3To2, plus
// AC (Ascension Island) and TA (Tristan da Cunha), which ISO reserves for
// the ITU and which libphonenumber reports as the region of their numbers
// (+247, +290 8). They have no alpha-3 code.
var alpha2 = map[string]bool{
	"AC": true, "AD": true, "AE": true, "AF": true, "AG": true, "AI": true, "AL": true, "AM": true,
	"AO": true, "AQ": true, "AR": true, "AS": true, "AT": true, "AU": true, "AW": true, "AX": true,
	"AZ": true, "BA": true, "BB": true, "BD": true, "BE": true, "BF": true, "BG": true, "BH": true,
	"BI": true, "BJ": true, "BL": true, "BM": true, "BN": true, "BO": true, "BQ": true, "BR": true,
	"BS": true, "BT": true, "BV": true, "BW": true, "BY": true, "BZ": true, "CA": true, "CC": true,
	"CD": true, "CF": true, "CG": true, "CH": true, "CI": true, "CK": true, "CL": true, "CM": true,
	"CN": true, "CO": true, "CR": true, "CU": true, "CV": true, "CW": true, "CX": true, "CY": true,
	"CZ": true, "DE": true, "DJ": true, "DK": true, "DM": true, "DO": true, "DZ": true, "EC": true,
	"EE": true, "EG": true, "EH": true, "ER": true, "ES": true, "ET": true, "FI": true, "FJ": true,
	"FK": true, "FM": true, "FO": true, "FR": true, "GA": true, "GB": true, "GD": true, "GE": true,
	"GF": true, "GG": true, "GH": true, "GI": true, "GL": true, "GM": true, "GN": true, "GP": true,
	"GQ": true, "GR": true, "GS": true, "GT": true, "GU": true, "GW": true, "GY": true, "HK": true,
	"HM": true, "HN": true, "HR": true, "HT": true, "HU": true, "ID": true, "IE": true, "IL": true,
	"IM": true, "IN": true, "IO": true, "IQ": true, "IR": true, "IS": true, "IT": true, "JE": true,
	"JM": true, "JO": true, "JP": true, "KE": true, "KG": true, "KH": true, "KI": true, "KM": true,
	"KN": true, "KP": true, "KR": true, "KW": true, "KY": true, "KZ": true, "LA": true, "LB": true,
	"LC": true, "LI": true, "LK": true, "LR": true, "LS": true, "LT": true, "LU": true, "LV": true,
	"LY": true, "MA": true, "MC": true, "MD": true, "ME": true, "MF": true, "MG": true, "MH": true,
	"MK": true, "ML": true, "MM": true, "MN": true, "MO": true, "MP": true, "MQ": true, "MR": true,
	"MS": true, "MT": true, "MU": true, "MV": true, "MW": true, "MX": true, "MY": true, "MZ": true,
	"NA": true, "NC": true, "NE": true, "NF": true, "NG": true, "NI": true, "NL": true, "NO": true,
	"NP": true, "NR": true, "NU": true, "NZ": true, "OM": true, "PA": true, "PE": true, "PF": true,
	"PG": true, "PH": true, "PK": true, "PL": true, "PM": true, "PN": true, "PR": true, "PS": true,
	"PT": true, "PW": true, "PY": true, "QA": true, "RE": true, "RO": true, "RS": true, "RU": true,
	"RW": true, "SA": true, "SB": true, "SC": true, "SD": true, "SE": true, "SG": true, "SH": true,
	"SI": true, "SJ": true, "SK": true, "SL": true, "SM": true, "SN": true, "SO": true, "SR": true,
	"SS": true, "ST": true, "SV": true, "SX": true, "SY": true, "SZ": true, "TA": true, "TC": true,
	"TD": true, "TF": true, "TG": true, "TH": true, "TJ": true, "TK": true, "TL": true, "TM": true,
	"TN": true, "TO": true, "TR": true, "TT": true, "TV": true, "TW": true, "TZ": true, "UA": true,
	"UG": true, "UM": true, "US": true, "UY": true, "UZ": true, "VA": true, "VC": true, "VE": true,
	"VG": true, "VI": true, "VN": true, "VU": true, "WF": true, "WS": true, "XK": true, "YE": true,
	"YT": true, "ZA": true, "ZM": true, "ZW": true,
}

// Allowed reports whether region may be sent to under an account's
// allow-list of countries (alpha-2 or alpha-3 codes; empty allows all).
func Allowed(countries []string, region string) bool {
	if len(countries) == 0 {
		return true
	}
	for _, c := range countries {
		if a2, ok := Alpha2(strings.TrimSpace(c)); ok && a2 == region {
			return true
		}
	}
	return false
}

// Alpha2 returns the alpha-2 region of an ISO 3166-1 alpha-3 ("GBR") or
// alpha-2 ("GB") code, in any case. It reports false for anything else.
func Alpha2(code string) (string, bool) {
	switch len(code) {
	case 2:
		c := strings.ToUpper(code)
		return c, alpha2[c]
	case 3:
		return Alpha3(code)
	}
	return "", false
}

// Alpha3 returns the alpha-2 region of an ISO 3166-1 alpha-3 code, in any
// case. It accepts only alpha-3, the form the API's countryIsoCode takes, so
// that a two-letter code is reported as invalid rather than guessed at.
func Alpha3(code string) (string, bool) {
	if len(code) != 3 {
		return "", false
	}
	a2, ok := alpha3To2[strings.ToUpper(code)]
	return a2, ok
}
