# The two commands of the README. `make test` is also what CI runs.
.PHONY: run test test-deps fuzz bench

run:
	go run ./cmd/verifyd serve --dev

# The tests start what they need themselves (a throwaway PostgreSQL cluster,
# the node-smpp SMSC after an npm install, a Kannel bearerbox and smsbox);
# this only makes sure the PostgreSQL and Kannel binaries are on the machine.
test: test-deps
	go vet ./...
	go test -race -count=1 -timeout 15m ./...

test-deps:
	@if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then \
		echo "installing PostgreSQL 15 for the tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi
	@if [ ! -x /usr/sbin/bearerbox ] || [ ! -x /usr/sbin/smsbox ]; then \
		echo "installing Kannel for the HTTP gateway sender's tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kannel >/dev/null; \
		invoke-rc.d kannel stop >/dev/null 2>&1 || true; \
	fi
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "the SMPP tests need Node.js 20 and npm"; exit 1; }
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing Chromium for the inbox page's browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null; \
	fi

# Fuzz each parser of untrusted input for a while (not part of `make test`).
FUZZTIME ?= 30s
# -fuzz must match one target: each name is anchored.
fuzz:
	go test ./http -run '^$$' -fuzz '^FuzzDecodeCreate$$' -fuzztime $(FUZZTIME)
	go test ./http -run '^$$' -fuzz '^FuzzJudgeCode$$' -fuzztime $(FUZZTIME)
	go test ./phone -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	go test ./phone -run '^$$' -fuzz '^FuzzParseAgreesWithIsValidNumber$$' -fuzztime $(FUZZTIME)
	go test ./smpp -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	go test ./smpp -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime $(FUZZTIME)
	go test ./smpp -run '^$$' -fuzz '^FuzzParseReceipt$$' -fuzztime $(FUZZTIME)
	go test ./kannel -run '^$$' -fuzz '^FuzzParseReceipt$$' -fuzztime $(FUZZTIME)
	go test ./gsm -run '^$$' -fuzz '^FuzzEncode$$' -fuzztime $(FUZZTIME)
	go test ./gsm -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	go test ./otp -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(FUZZTIME)
