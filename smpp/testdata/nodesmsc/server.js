// An independent SMSC for verifyd's SMPP client tests, built on node-smpp
// 0.5.1 (npm "smpp"), so the Go client is checked against an implementation
// it shares no code with.
//
// Environment: PORT (0 picks a free one), SYSTEM_ID, PASSWORD, and
// AUTO_RECEIPT (e.g. DELIVRD): when set, every whole message gets that
// receipt for each of its parts as soon as its last part arrives.
// It writes one JSON event per line on stdout, the first being
// {"event":"listening","port":N}, and reads one JSON command per line on
// stdin:
//   {"cmd":"receipt","message_id":"…","stat":"DELIVRD","err":"000"}
//                            add "pdu":"data_sm" to send it as a data_sm
//   {"cmd":"enquire_link"}   sent on every bound session
//   {"cmd":"unbind"}         sent on every bound session, which then closes
//   {"cmd":"exit"}
// Long messages are reassembled from their UDH (8-bit reference) and
// reported as a "message" event once every part has arrived.
'use strict';

const smpp = require('smpp');
const readline = require('readline');

const systemID = process.env.SYSTEM_ID || 'verifyd';
const password = process.env.PASSWORD || 'secret';

// Keep validity_period as the raw string the client sent: node-smpp would
// otherwise turn it into a Date.
delete smpp.commands.submit_sm.params.validity_period.filter;
delete smpp.commands.submit_sm.params.schedule_delivery_time.filter;

const states = {ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8};

let nextSession = 0;
let nextMessageID = 4096;
const sessions = new Set(); // bound sessions
const parts = new Map(); // "session/ref/total" -> {texts: [], ids: []}

function emit(ev) {
	process.stdout.write(JSON.stringify(ev) + '\n');
}

function yymmddhhmm(d) {
	return d.toISOString().replace(/[-:T]/g, '').slice(2, 12);
}

const server = smpp.createServer((session) => {
	session.id = ++nextSession;
	session.bound = false;
	session.canReceive = false;

	const bind = (pdu) => {
		const ok = pdu.system_id === systemID && pdu.password === password;
		emit({event: 'bind', session: session.id, command: pdu.command, system_id: pdu.system_id,
			interface_version: pdu.interface_version, ok});
		if (!ok) {
			session.send(pdu.response({command_status: smpp.ESME_RINVPASWD}));
			session.close();
			return;
		}
		session.bound = true;
		session.canReceive = pdu.command !== 'bind_transmitter';
		sessions.add(session);
		session.send(pdu.response({system_id: 'nodesmsc'}));
		if (session.canReceive) {
			waiting.splice(0).forEach((cmd) => setImmediate(() => receipt(cmd)));
		}
	};
	session.on('bind_transceiver', bind);
	session.on('bind_transmitter', bind);
	session.on('bind_receiver', bind);

	session.on('submit_sm', (pdu) => {
		if (!session.bound) {
			session.send(pdu.response({command_status: smpp.ESME_RINVBNDSTS}));
			return;
		}
		const id = String(nextMessageID++);
		const sm = pdu.short_message || {};
		const ev = {
			event: 'submit', session: session.id, seq: pdu.sequence_number, message_id: id,
			source: {ton: pdu.source_addr_ton, npi: pdu.source_addr_npi, addr: pdu.source_addr},
			dest: {ton: pdu.dest_addr_ton, npi: pdu.dest_addr_npi, addr: pdu.destination_addr},
			esm_class: pdu.esm_class, data_coding: pdu.data_coding,
			registered_delivery: pdu.registered_delivery, validity_period: pdu.validity_period,
			text: typeof sm.message === 'string' ? sm.message : null,
		};
		let concat = null;
		for (const h of sm.udh || []) {
			if (h[0] === 0x00 && h[1] === 3) {
				concat = {ref: h[2], total: h[3], part: h[4]};
			}
		}
		if (concat) {
			Object.assign(ev, concat);
		}
		session.send(pdu.response({message_id: id}));
		emit(ev);
		if (!concat) {
			emit({event: 'message', session: session.id, text: ev.text, message_ids: [id]});
			autoReceipt([id], ev.dest.addr);
			return;
		}
		const key = session.id + '/' + concat.ref + '/' + concat.total;
		const m = parts.get(key) || {texts: [], ids: [], n: 0};
		if (m.texts[concat.part - 1] === undefined) {
			m.n++;
		}
		m.texts[concat.part - 1] = ev.text;
		m.ids[concat.part - 1] = id;
		parts.set(key, m);
		if (m.n === concat.total) {
			parts.delete(key);
			emit({event: 'message', session: session.id, text: m.texts.join(''), message_ids: m.ids});
			autoReceipt(m.ids, ev.dest.addr);
		}
	});

	session.on('enquire_link', (pdu) => {
		emit({event: 'enquire_link', session: session.id});
		session.send(pdu.response());
	});

	session.on('unbind', (pdu) => {
		emit({event: 'unbind', session: session.id});
		session.send(pdu.response());
		session.close();
	});

	session.on('close', () => {
		sessions.delete(session);
		for (const cmd of (unacked.get(session) || new Map()).values()) {
			waiting.push(cmd);
		}
		unacked.delete(session);
		emit({event: 'close', session: session.id});
	});

	session.on('error', (err) => {
		emit({event: 'error', session: session.id, error: String(err && err.message || err)});
	});
});

function autoReceipt(ids, handset) {
	const stat = process.env.AUTO_RECEIPT;
	if (stat) {
		// After the submit_sm_resp has gone out, as a real SMSC would.
		setImmediate(() => ids.forEach((id) => receipt({message_id: id, stat, source: handset})));
	}
}

// Receipts not yet acknowledged, by session: like a real SMSC, the node
// SMSC sends them again on the next bind when a session ends without
// acknowledging them (the client died before recording them).
const unacked = new Map(); // session -> Map(message_id -> cmd)
const waiting = []; // receipts with no receiving session to go to

function receipt(cmd) {
	const target = [...sessions].reverse().find((s) => s.canReceive);
	if (!target) {
		waiting.push(cmd);
		emit({event: 'receipt_queued', message_id: cmd.message_id});
		return;
	}
	if (!unacked.has(target)) {
		unacked.set(target, new Map());
	}
	unacked.get(target).set(cmd.message_id, cmd);
	const now = yymmddhhmm(new Date());
	const text = 'id:' + cmd.message_id + ' sub:001 dlvrd:' + (cmd.stat === 'DELIVRD' ? '001' : '000') +
		' submit date:' + now + ' done date:' + now + ' stat:' + cmd.stat + ' err:' + (cmd.err || '000') + ' text:';
	const fields = {
		source_addr: cmd.source || '447700900123',
		destination_addr: 'verifyd',
		esm_class: 0x04,
		receipted_message_id: cmd.message_id,
		message_state: states[cmd.stat] || 7,
	};
	const answered = (resp) => {
		if (resp.command_status === 0) {
			unacked.get(target).delete(cmd.message_id);
		}
		emit({event: resp.command, session: target.id,
			message_id: cmd.message_id, status: resp.command_status});
	};
	if (cmd.pdu === 'data_sm') {
		// data_sm has no short_message: the text goes in message_payload.
		target.data_sm(Object.assign(fields, {message_payload: Buffer.from(text, 'ascii')}), answered);
		return;
	}
	target.deliver_sm(Object.assign(fields, {short_message: Buffer.from(text, 'ascii')}), answered);
}

readline.createInterface({input: process.stdin}).on('line', (line) => {
	let cmd;
	try {
		cmd = JSON.parse(line);
	} catch (e) {
		emit({event: 'error', error: 'bad command'});
		return;
	}
	switch (cmd.cmd) {
	case 'receipt':
		receipt(cmd);
		break;
	case 'enquire_link':
		for (const s of sessions) {
			s.enquire_link((resp) => emit({event: 'enquire_link_resp', session: s.id, status: resp.command_status}));
		}
		break;
	case 'unbind':
		for (const s of sessions) {
			s.unbind((resp) => {
				emit({event: 'unbind_resp', session: s.id, status: resp.command_status});
				s.close();
			});
		}
		break;
	case 'exit':
		process.exit(0);
		break;
	default:
		emit({event: 'error', error: 'unknown command ' + cmd.cmd});
	}
}).on('close', () => process.exit(0));

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
	emit({event: 'listening', port: server.address().port});
});
