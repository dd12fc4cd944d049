// strata's browser example: a WebSocket echo client for people (text box,
// log) and for tests (window.strataEcho). The socket goes to the page's own
// origin at /ws, so a browser holding an HTTP/2 connection to the server
// opens it on that connection (RFC 8441) when the server allows it, and
// otherwise by an HTTP/1.1 Upgrade on a connection of its own.
'use strict';

const WS_URL = (location.protocol === 'https:' ? 'wss://' : 'ws://') +
    location.host + '/ws';

// ---- the page: one socket, a text box and a log ----

const ui = {
    status: document.getElementById('status'),
    form: document.getElementById('form'),
    text: document.getElementById('text'),
    send: document.getElementById('send'),
    reconnect: document.getElementById('reconnect'),
    log: document.getElementById('log'),
};
let socket = null;

function log(kind, text) {
    const li = document.createElement('li');
    li.className = kind;
    li.textContent = text;
    ui.log.appendChild(li);
    li.scrollIntoView({ block: 'nearest' });
}

function setStatus(text, open) {
    ui.status.textContent = text;
    ui.send.disabled = !open;
}

function connect() {
    if (socket && socket.readyState <= WebSocket.OPEN)
        socket.close(1000, 'reconnect');
    const ws = new WebSocket(WS_URL);
    ws.binaryType = 'arraybuffer';
    socket = ws;
    setStatus('connecting', false);
    ws.onopen = () => {
        setStatus('open', true);
        log('info', 'connected to ' + WS_URL);
    };
    ws.onmessage = (ev) => {
        if (typeof ev.data === 'string')
            log('echo', 'echo: ' + ev.data);
        else
            log('echo', 'echo: ' + ev.data.byteLength + ' bytes (binary)');
    };
    ws.onerror = () => log('error', 'WebSocket error');
    ws.onclose = (ev) => {
        if (socket !== ws)
            return; // an older socket, replaced by Reconnect
        setStatus('closed (' + ev.code + ')', false);
        log('info', 'closed: ' + ev.code + (ev.reason ? ' ' + ev.reason : ''));
    };
}

ui.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!socket || socket.readyState !== WebSocket.OPEN)
        return;
    socket.send(ui.text.value);
    log('sent', 'sent: ' + ui.text.value);
    ui.text.value = '';
});
ui.reconnect.addEventListener('click', connect);
document.getElementById('url').textContent = WS_URL;
// "h2" or "http/1.1": how this page came (the socket follows it when h2).
const nav = performance.getEntriesByType('navigation')[0];
document.getElementById('proto').textContent =
    (nav && nav.nextHopProtocol) || 'unknown';
connect();

// ---- the test: strataEcho(sizes) ----

// Text of exactly n UTF-8 bytes, characters of 1 to 4 bytes in it, then
// ASCII to fill: the server must keep text as text and UTF-8 intact.
function textOf(n) {
    const unit = 'strata \u00e9\u20ac\u{1F600} '; // 7 + 2 + 3 + 4 + 1 bytes
    const unitBytes = 17;
    const fill = 'abcdefghijklmnop';
    return unit.repeat(Math.floor(n / unitBytes)) +
        fill.slice(0, n % unitBytes);
}

// n bytes whose pattern does not repeat every 256 (a byte lost or
// doubled anywhere shows).
function bytesOf(n) {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++)
        b[i] = (i * 131 + (i >>> 8) + n) & 255;
    return b;
}

function firstDifference(a, b) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++)
        if (a[i] !== b[i])
            return i;
    return a.length === b.length ? -1 : n;
}

// p, or value if p has not settled within ms: a test must end, not hang.
function within(p, ms, value) {
    let t;
    const late = new Promise((res) => { t = setTimeout(() => res(value), ms); });
    return Promise.race([p, late]).finally(() => clearTimeout(t));
}

// One socket whose messages are awaited one at a time: next() is the next
// message, or null once the socket has closed.
function openSocket(url) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        ws.binaryType = 'arraybuffer';
        const inbox = [];
        let waiter = null, isClosed = false;
        const closed = new Promise((res) => {
            ws.onclose = (ev) => {
                isClosed = true;
                res({ code: ev.code, reason: ev.reason, wasClean: ev.wasClean });
                if (waiter)
                    waiter(null);
                reject(new Error('closed before open: ' + ev.code));
            };
        });
        ws.onmessage = (ev) => {
            if (waiter) {
                const w = waiter;
                waiter = null;
                w(ev.data);
            } else {
                inbox.push(ev.data);
            }
        };
        const next = () => inbox.length ? Promise.resolve(inbox.shift()) :
            isClosed ? Promise.resolve(null) :
                new Promise((res) => { waiter = res; });
        ws.onopen = () => resolve({ ws, next, closed });
    });
}

async function echoOne(sock, kind, size, ms) {
    const enc = new TextEncoder();
    const sent = kind === 'text' ? textOf(size) : bytesOf(size);
    sock.ws.send(sent);
    const got = await within(sock.next(), ms, undefined);
    const r = { kind, size, ok: false };
    if (got === null) {
        r.error = 'socket closed before the echo';
    } else if (got === undefined) {
        r.error = 'no echo within ' + ms + ' ms';
    } else if (kind === 'text') {
        if (typeof got !== 'string') {
            r.error = 'echo came back binary';
        } else {
            const a = enc.encode(sent), b = enc.encode(got);
            r.received = b.length;
            r.firstDifference = firstDifference(a, b);
            r.ok = r.firstDifference === -1 && b.length === size;
        }
    } else if (typeof got === 'string') {
        r.error = 'echo came back as text';
    } else {
        const b = new Uint8Array(got);
        r.received = b.length;
        r.firstDifference = firstDifference(sent, b);
        r.ok = r.firstDifference === -1;
    }
    return r;
}

// Send a text and a binary message of each size (bytes), await each echo
// (ms at most, default 30 s) and compare it byte for byte, then close
// with 1000 (and await the server's close as long). Resolves with
// { ok, url, protocol, extensions, results: [{kind, size, ok, received,
// firstDifference, error?}], closeCode, closeReason, wasClean, error? }.
window.strataEcho = async function strataEcho(sizes, ms, url) {
    ms = ms || 30000;
    const out = { ok: false, url: url || WS_URL, results: [] };
    let sock;
    try {
        sock = await within(openSocket(out.url), ms, null);
    } catch (e) {
        out.error = 'open failed: ' + e.message;
        return out;
    }
    if (!sock) {
        out.error = 'not open within ' + ms + ' ms';
        return out;
    }
    out.protocol = sock.ws.protocol;
    out.extensions = sock.ws.extensions;
    run: for (const size of sizes) {
        for (const kind of ['text', 'binary']) {
            const r = await echoOne(sock, kind, size, ms);
            out.results.push(r);
            if (r.error)
                break run; // the next echo could be this one's, late
        }
    }
    sock.ws.close(1000, 'done');
    const c = await within(sock.closed, ms,
        { code: null, reason: 'no close within ' + ms + ' ms', wasClean: false });
    out.closeCode = c.code;
    out.closeReason = c.reason;
    out.wasClean = c.wasClean;
    out.ok = out.results.length === 2 * sizes.length &&
        out.results.every((r) => r.ok) && c.code === 1000 && c.wasClean;
    return out;
};
