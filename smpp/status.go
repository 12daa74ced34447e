package smpp

import "fmt"

// Status is a command_status: 0 in requests, the outcome in responses.
type Status uint32

// The command_status values a client meets (SMPP 3.4 §5.1.3).
const (
	StatusOK              Status = 0x00 // ESME_ROK
	StatusInvMsgLen       Status = 0x01 // ESME_RINVMSGLEN
	StatusInvCmdLen       Status = 0x02 // ESME_RINVCMDLEN
	StatusInvCmdID        Status = 0x03 // ESME_RINVCMDID
	StatusInvBndSts       Status = 0x04 // ESME_RINVBNDSTS
	StatusAlyBnd          Status = 0x05 // ESME_RALYBND
	StatusInvPrtFlg       Status = 0x06 // ESME_RINVPRTFLG
	StatusInvRegDlvFlg    Status = 0x07 // ESME_RINVREGDLVFLG
	StatusSysErr          Status = 0x08 // ESME_RSYSERR
	StatusInvSrcAdr       Status = 0x0A // ESME_RINVSRCADR
	StatusInvDstAdr       Status = 0x0B // ESME_RINVDSTADR
	StatusInvMsgID        Status = 0x0C // ESME_RINVMSGID
	StatusBindFail        Status = 0x0D // ESME_RBINDFAIL
	StatusInvPaswd        Status = 0x0E // ESME_RINVPASWD
	StatusInvSysID        Status = 0x0F // ESME_RINVSYSID
	StatusCancelFail      Status = 0x11 // ESME_RCANCELFAIL
	StatusReplaceFail     Status = 0x13 // ESME_RREPLACEFAIL
	StatusMsgQFul         Status = 0x14 // ESME_RMSGQFUL
	StatusInvSerTyp       Status = 0x15 // ESME_RINVSERTYP
	StatusInvNumDests     Status = 0x33 // ESME_RINVNUMDESTS
	StatusInvDLName       Status = 0x34 // ESME_RINVDLNAME
	StatusInvDestFlag     Status = 0x40 // ESME_RINVDESTFLAG
	StatusInvSubRep       Status = 0x42 // ESME_RINVSUBREP
	StatusInvEsmClass     Status = 0x43 // ESME_RINVESMCLASS
	StatusCntSubDL        Status = 0x44 // ESME_RCNTSUBDL
	StatusSubmitFail      Status = 0x45 // ESME_RSUBMITFAIL
	StatusInvSrcTON       Status = 0x48 // ESME_RINVSRCTON
	StatusInvSrcNPI       Status = 0x49 // ESME_RINVSRCNPI
	StatusInvDstTON       Status = 0x50 // ESME_RINVDSTTON
	StatusInvDstNPI       Status = 0x51 // ESME_RINVDSTNPI
	StatusInvSysTyp       Status = 0x53 // ESME_RINVSYSTYP
	StatusInvRepFlag      Status = 0x54 // ESME_RINVREPFLAG
	StatusInvNumMsgs      Status = 0x55 // ESME_RINVNUMMSGS
	StatusThrottled       Status = 0x58 // ESME_RTHROTTLED
	StatusInvSched        Status = 0x61 // ESME_RINVSCHED
	StatusInvExpiry       Status = 0x62 // ESME_RINVEXPIRY
	StatusInvDftMsgID     Status = 0x63 // ESME_RINVDFTMSGID
	StatusXTAppn          Status = 0x64 // ESME_RX_T_APPN
	StatusXPAppn          Status = 0x65 // ESME_RX_P_APPN
	StatusXRAppn          Status = 0x66 // ESME_RX_R_APPN
	StatusQueryFail       Status = 0x67 // ESME_RQUERYFAIL
	StatusInvOptParStream Status = 0xC0 // ESME_RINVOPTPARSTREAM
	StatusOptParNotAllwd  Status = 0xC1 // ESME_ROPTPARNOTALLWD
	StatusInvParLen       Status = 0xC2 // ESME_RINVPARLEN
	StatusMissingOptParam Status = 0xC3 // ESME_RMISSINGOPTPARAM
	StatusInvOptParamVal  Status = 0xC4 // ESME_RINVOPTPARAMVAL
	StatusDeliveryFailure Status = 0xFE // ESME_RDELIVERYFAILURE
	StatusUnknownErr      Status = 0xFF // ESME_RUNKNOWNERR
)

var statusNames = map[Status]string{
	StatusOK:              "ESME_ROK",
	StatusInvMsgLen:       "ESME_RINVMSGLEN",
	StatusInvCmdLen:       "ESME_RINVCMDLEN",
	StatusInvCmdID:        "ESME_RINVCMDID",
	StatusInvBndSts:       "ESME_RINVBNDSTS",
	StatusAlyBnd:          "ESME_RALYBND",
	StatusInvPrtFlg:       "ESME_RINVPRTFLG",
	StatusInvRegDlvFlg:    "ESME_RINVREGDLVFLG",
	StatusSysErr:          "ESME_RSYSERR",
	StatusInvSrcAdr:       "ESME_RINVSRCADR",
	StatusInvDstAdr:       "ESME_RINVDSTADR",
	StatusInvMsgID:        "ESME_RINVMSGID",
	StatusBindFail:        "ESME_RBINDFAIL",
	StatusInvPaswd:        "ESME_RINVPASWD",
	StatusInvSysID:        "ESME_RINVSYSID",
	StatusCancelFail:      "ESME_RCANCELFAIL",
	StatusReplaceFail:     "ESME_RREPLACEFAIL",
	StatusMsgQFul:         "ESME_RMSGQFUL",
	StatusInvSerTyp:       "ESME_RINVSERTYP",
	StatusInvNumDests:     "ESME_RINVNUMDESTS",
	StatusInvDLName:       "ESME_RINVDLNAME",
	StatusInvDestFlag:     "ESME_RINVDESTFLAG",
	StatusInvSubRep:       "ESME_RINVSUBREP",
	StatusInvEsmClass:     "ESME_RINVESMCLASS",
	StatusCntSubDL:        "ESME_RCNTSUBDL",
	StatusSubmitFail:      "ESME_RSUBMITFAIL",
	StatusInvSrcTON:       "ESME_RINVSRCTON",
	StatusInvSrcNPI:       "ESME_RINVSRCNPI",
	StatusInvDstTON:       "ESME_RINVDSTTON",
	StatusInvDstNPI:       "ESME_RINVDSTNPI",
	StatusInvSysTyp:       "ESME_RINVSYSTYP",
	StatusInvRepFlag:      "ESME_RINVREPFLAG",
	StatusInvNumMsgs:      "ESME_RINVNUMMSGS",
	StatusThrottled:       "ESME_RTHROTTLED",
	StatusInvSched:        "ESME_RINVSCHED",
	StatusInvExpiry:       "ESME_RINVEXPIRY",
	StatusInvDftMsgID:     "ESME_RINVDFTMSGID",
	StatusXTAppn:          "ESME_RX_T_APPN",
	StatusXPAppn:          "ESME_RX_P_APPN",
	StatusXRAppn:          "ESME_RX_R_APPN",
	StatusQueryFail:       "ESME_RQUERYFAIL",
	StatusInvOptParStream: "ESME_RINVOPTPARSTREAM",
	StatusOptParNotAllwd:  "ESME_ROPTPARNOTALLWD",
	StatusInvParLen:       "ESME_RINVPARLEN",
	StatusMissingOptParam: "ESME_RMISSINGOPTPARAM",
	StatusInvOptParamVal:  "ESME_RINVOPTPARAMVAL",
	StatusDeliveryFailure: "ESME_RDELIVERYFAILURE",
	StatusUnknownErr:      "ESME_RUNKNOWNERR",
}

// String returns the specification's name ("ESME_RINVDSTADR"), or for a
// reserved or vendor value its hex form ("0x00000401"), so it is always safe to
// store as a SendError reason.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("0x%08X", uint32(s))
}

// statusClass is what a submitter does about a submit_sm_resp status.
type statusClass int

const (
	classOK        statusClass = iota
	classThrottle              // pause the whole bind, resend the same part
	classTemporary             // give up for now; the delivery worker retries
	classRebind                // as classTemporary, and bind the session again
	classPermanent             // never retry
)

// classify follows SMPP.md §4 and pitfall 9: 0x58 and 0x14 both say the
// message was not accepted yet, and pause the bind; 0x08, 0x64 and 0xFF are temporary (as Kannel treats them); 0x04 and
// 0x05 are about the session, not the message, so the session is bound again
// and the message retried; the rest, vendor codes included, fail the message
// for good, because retrying a bad destination only costs money.
func classify(s Status) statusClass {
	switch s {
	case StatusOK:
		return classOK
	case StatusThrottled, StatusMsgQFul:
		return classThrottle
	case StatusSysErr, StatusXTAppn, StatusUnknownErr:
		return classTemporary
	case StatusInvBndSts, StatusAlyBnd:
		// The session is in the wrong state: the message is fine and
		// will go through after a rebind.
		return classRebind
	}
	return classPermanent
}
