// Headless Chromium against a strata web server (tests/e2e_browser.sh runs
// it): the page examples/web/index.html loads from the server, its script
// echoes text and binary messages over a WebSocket to the same origin, and
// the test proves from the browser's side which way the WebSocket went.
//
//   node browser_test.js --url https://127.0.0.1:PORT/ --expect h2|http1
//       --spki BASE64 --netlog FILE [--chromium PATH] [--screenshot FILE]
//
// --expect h2: the page came over HTTP/2 and every WebSocket rode that same
// HTTP/2 connection (RFC 8441): DevTools shows a 200 handshake whose request
// had no Sec-WebSocket-Key, and Chromium's own net-log shows one TLS
// connection (ALPN h2), one HTTP/2 session carrying both GET / and the
// CONNECTs with ":protocol: websocket", each answered 200, after the server
// sent SETTINGS_ENABLE_CONNECT_PROTOCOL=1.
// --expect http1: the page came over HTTP/1.1 and each WebSocket was an
// HTTP/1.1 Upgrade (101, Sec-WebSocket-Key sent), no HTTP/2 session at all.
//
// The server's certificate is trusted by its key (--spki: base64 SHA-256 of
// its SubjectPublicKeyInfo), nothing else. Prints ok:/FAIL: lines; exit 0
// when every check passed, 1 otherwise, 2 for bad usage. playwright-core is
// found through NODE_PATH; the browser is Debian's chromium, never one
// downloaded by Playwright.
'use strict';

const fs = require('fs');

const SIZES = [0, 1, 125, 126, 65535, 65536, 1048576];
const STEP_MS = 30000; // one page step (a load, one echo) at most

function usage(why) {
    process.stderr.write('browser_test.js: ' + why + '\nusage: node ' +
        'browser_test.js --url URL --expect h2|http1 --spki BASE64 ' +
        '--netlog FILE [--chromium PATH] [--screenshot FILE]\n');
    process.exit(2);
}

function parseArgs(argv) {
    const o = { chromium: '/usr/bin/chromium' };
    const names = ['url', 'expect', 'spki', 'netlog', 'chromium',
        'screenshot'];
    for (let i = 0; i < argv.length; i += 2) {
        const name = argv[i].replace(/^--/, '');
        if (!names.includes(name) || i + 1 >= argv.length)
            usage('bad argument ' + argv[i]);
        o[name] = argv[i + 1];
    }
    for (const need of ['url', 'expect', 'spki', 'netlog'])
        if (!o[need])
            usage('--' + need + ' is required');
    if (o.expect !== 'h2' && o.expect !== 'http1')
        usage('--expect is h2 or http1');
    return o;
}

let failed = 0;
function check(name, good, detail) {
    if (good) {
        console.log('ok: ' + name);
    } else {
        failed++;
        console.log('FAIL: ' + name + (detail ? ': ' + detail : ''));
    }
    return good;
}

function headerOf(headers, name) {
    const want = name.toLowerCase();
    for (const k of Object.keys(headers || {}))
        if (k.toLowerCase() === want)
            return headers[k];
    return undefined;
}

// ---- DevTools Protocol: what the browser's network stack reported ----

function recordNetwork(cdp) {
    const seen = { responses: [], sockets: new Map() };
    const socket = (id) => {
        if (!seen.sockets.has(id))
            seen.sockets.set(id, { id });
        return seen.sockets.get(id);
    };
    cdp.on('Network.responseReceived', (p) => seen.responses.push(p.response));
    cdp.on('Network.webSocketCreated', (p) => { socket(p.requestId).url = p.url; });
    cdp.on('Network.webSocketHandshakeResponseReceived', (p) => {
        socket(p.requestId).response = p.response;
    });
    cdp.on('Network.webSocketFrameError', (p) => {
        socket(p.requestId).error = p.errorMessage;
    });
    return seen;
}

function checkResponses(seen, base, protocol) {
    const want = { '': 'text/html', 'echo.js': 'text/javascript',
        'style.css': 'text/css' };
    for (const [file, type] of Object.entries(want)) {
        const url = new URL(file, base).href;
        const r = seen.responses.find((x) => x.url === url);
        const name = 'page ' + (file || '/') + ' over ' + protocol;
        if (!check(name, r, 'no response seen for ' + url))
            continue;
        const ctype = headerOf(r.headers, 'content-type') || '';
        check(name + ': 200 ' + type, r.status === 200 &&
            ctype.split(';')[0].trim() === type,
        'status ' + r.status + ', content-type "' + ctype + '"');
        check(name + ': protocol', r.protocol === protocol,
            'DevTools says "' + r.protocol + '"');
    }
}

function checkHandshakes(seen, expect) {
    const sockets = [...seen.sockets.values()].filter((s) => s.url);
    check('DevTools saw the page\'s WebSockets', sockets.length >= 2,
        sockets.length + ' seen, expected the page\'s and strataEcho\'s');
    for (const s of sockets) {
        const r = s.response;
        const name = 'WebSocket ' + s.id + ' handshake';
        if (!check(name + ' seen', r, 'no handshake response' +
            (s.error ? ' (' + s.error + ')' : '')))
            continue;
        const key = headerOf(r.requestHeaders, 'Sec-WebSocket-Key');
        if (expect === 'h2') {
            check(name + ': 200 without Sec-WebSocket-Key (RFC 8441)',
                r.status === 200 && key === undefined,
                'status ' + r.status + ', Sec-WebSocket-Key ' + key);
        } else {
            check(name + ': 101 with Sec-WebSocket-Key and -Accept (Upgrade)',
                r.status === 101 && key !== undefined &&
                headerOf(r.headers, 'Sec-WebSocket-Accept') !== undefined,
                'status ' + r.status + ', Sec-WebSocket-Key ' + key);
        }
    }
    return sockets.length;
}

// ---- the page, as a person and as a test uses it ----

async function checkPage(page, seen, o) {
    const protocol = o.expect === 'h2' ? 'h2' : 'http/1.1';
    let resp = null, why = 'no response';
    try {
        resp = await page.goto(o.url, { timeout: STEP_MS });
    } catch (e) {
        // a file served as anything but a page is a download, not a page
        why = e.message.split('\n')[0];
    }
    const ctype = resp ? resp.headers()['content-type'] || '' : '';
    if (!check('GET / is a page (200 text/html)', resp && resp.status() ===
        200 && ctype.startsWith('text/html'), resp ? 'status ' +
        resp.status() + ', content-type "' + ctype + '"' : why))
        return false;
    await page.waitForLoadState('load');
    checkResponses(seen, o.url, protocol);

    // A person: the page's own socket opens, a typed line comes back.
    const status = page.locator('#status');
    try {
        await status.filter({ hasText: /^open$/ }).waitFor({ timeout: STEP_MS });
        check('page says its WebSocket is open', true);
    } catch (e) {
        check('page says its WebSocket is open', false,
            'status "' + await status.textContent() + '"');
        return false;
    }
    const line = 'hello, strata \u00e9\u20ac';
    await page.fill('#text', line);
    await page.click('#send');
    try {
        await page.locator('#log li.echo', { hasText: 'echo: ' + line })
            .waitFor({ timeout: STEP_MS });
        check('a typed line comes back in the page\'s log', true);
    } catch (e) {
        check('a typed line comes back in the page\'s log', false,
            'log: ' + await page.locator('#log').innerText());
    }
    return true;
}

async function checkEcho(page) {
    const r = await page.evaluate(([s, ms]) => window.strataEcho(s, ms),
        [SIZES, STEP_MS]);
    const bad = r.results.filter((x) => !x.ok);
    check('strataEcho: text and binary of ' + SIZES.join(', ') +
        ' bytes echoed byte for byte', r.results.length === 2 * SIZES.length &&
        bad.length === 0, (r.error || '') + ' ' + JSON.stringify(bad.slice(0, 3)) +
        ' (' + r.results.length + ' results)');
    check('strataEcho: closed with 1000, cleanly',
        r.closeCode === 1000 && r.wasClean === true,
        'code ' + r.closeCode + ', wasClean ' + r.wasClean);
    check('strataEcho: no extension or subprotocol', r.extensions === '' &&
        r.protocol === '', 'extensions "' + r.extensions + '", protocol "' +
        r.protocol + '"');
    return r.ok;
}

// ---- Chromium's net-log: the connection from the network stack's side ----

// The log is JSON once Chromium exits cleanly; after a crash it lacks its
// closing "]}" and is read up to its last whole event.
function readNetLog(file) {
    const text = fs.readFileSync(file, 'utf8');
    try {
        return JSON.parse(text);
    } catch (e) {
        return JSON.parse(text.replace(/,?\s*$/, '') + ']}');
    }
}

function netLogEvents(log) {
    const type = {}, source = {};
    for (const [k, v] of Object.entries(log.constants.logEventTypes))
        type[v] = k;
    for (const [k, v] of Object.entries(log.constants.logSourceType))
        source[v] = k;
    return log.events.map((e) => ({ type: type[e.type], source: e.source.id,
        sourceType: source[e.source.type], phase: e.phase,
        params: e.params || {} }));
}

function hasHeader(lines, line) {
    return (lines || []).includes(line);
}

function checkNetLogH2(events, origin, sockets) {
    const tls = events.filter((e) => e.type === 'SSL_CONNECT' &&
        e.params.next_proto !== undefined);
    check('net-log: one TLS connection, ALPN h2', tls.length === 1 &&
        tls[0].params.next_proto === 'h2',
    JSON.stringify(tls.map((e) => e.params.next_proto)));
    const sessions = events.filter((e) => e.type === 'HTTP2_SESSION' &&
        e.params.host === origin).map((e) => e.source);
    if (!check('net-log: one HTTP/2 session to ' + origin,
        sessions.length === 1, sessions.length + ' sessions'))
        return;
    const mine = events.filter((e) => e.source === sessions[0]);
    check('net-log: the server sent SETTINGS_ENABLE_CONNECT_PROTOCOL=1',
        mine.some((e) => e.type === 'HTTP2_SESSION_RECV_SETTING' &&
            /ENABLE_CONNECT_PROTOCOL/.test(e.params.id) && e.params.value === 1));
    const sent = mine.filter((e) => e.type === 'HTTP2_SESSION_SEND_HEADERS');
    check('net-log: GET / went on that session', sent.some((e) =>
        hasHeader(e.params.headers, ':method: GET') &&
        hasHeader(e.params.headers, ':path: /')));
    const connects = sent.filter((e) =>
        hasHeader(e.params.headers, ':method: CONNECT') &&
        hasHeader(e.params.headers, ':protocol: websocket') &&
        hasHeader(e.params.headers, ':path: /ws'));
    check('net-log: every WebSocket was a CONNECT with :protocol websocket ' +
        'on that session', connects.length === sockets && sockets > 0,
    connects.length + ' CONNECTs for ' + sockets + ' WebSockets');
    const ok = connects.filter((c) => mine.some((e) =>
        e.type === 'HTTP2_SESSION_RECV_HEADERS' &&
        e.params.stream_id === c.params.stream_id &&
        hasHeader(e.params.headers, ':status: 200')));
    check('net-log: each CONNECT answered :status 200',
        ok.length === connects.length && ok.length > 0,
        ok.length + ' of ' + connects.length);
    const upgrades = events.filter((e) =>
        e.type === 'HTTP_TRANSACTION_SEND_REQUEST_HEADERS' &&
        hasHeader(e.params.headers, 'Upgrade: websocket'));
    check('net-log: no HTTP/1.1 Upgrade', upgrades.length === 0,
        upgrades.length + ' seen');
}

function checkNetLogHttp1(events, sockets) {
    const tls = events.filter((e) => e.type === 'SSL_CONNECT' &&
        e.params.next_proto !== undefined);
    check('net-log: every TLS connection ALPN http/1.1', tls.length > 0 &&
        tls.every((e) => e.params.next_proto === 'http/1.1'),
    JSON.stringify(tls.map((e) => e.params.next_proto)));
    check('net-log: no HTTP/2 session',
        !events.some((e) => e.type === 'HTTP2_SESSION'));
    const upgrades = events.filter((e) =>
        e.type === 'HTTP_TRANSACTION_SEND_REQUEST_HEADERS' &&
        hasHeader(e.params.headers, 'Upgrade: websocket') &&
        e.params.headers.some((h) => /^Sec-WebSocket-Key: /i.test(h)));
    const answered = upgrades.filter((u) => events.some((e) =>
        e.source === u.source &&
        e.type === 'HTTP_TRANSACTION_READ_RESPONSE_HEADERS' &&
        /^HTTP\/1\.1 101/.test((e.params.headers || [])[0])));
    check('net-log: every WebSocket an HTTP/1.1 Upgrade answered 101',
        upgrades.length === sockets && answered.length === sockets &&
        sockets > 0, upgrades.length + ' Upgrades, ' + answered.length +
        ' answered 101, for ' + sockets + ' WebSockets');
}

function checkNetLog(o, sockets) {
    let events;
    try {
        events = netLogEvents(readNetLog(o.netlog));
    } catch (e) {
        check('net-log readable', false, o.netlog + ': ' + e.message);
        return;
    }
    if (o.expect === 'h2')
        checkNetLogH2(events, new URL(o.url).host, sockets);
    else
        checkNetLogHttp1(events, sockets);
}

// ---- main ----

async function main() {
    const o = parseArgs(process.argv.slice(2));
    const { chromium } = require('playwright-core');
    const browser = await chromium.launch({
        executablePath: o.chromium,
        headless: true,
        timeout: STEP_MS,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic',
            '--no-first-run', '--disable-background-networking',
            '--disable-component-update', '--disable-sync',
            '--ignore-certificate-errors-spki-list=' + o.spki,
            '--log-net-log=' + o.netlog],
    });
    console.log('chromium ' + browser.version() + ', ' + o.url +
        ', expecting ' + o.expect);
    let sockets = 0;
    try {
        const context = await browser.newContext();
        const page = await context.newPage();
        page.on('console', (m) => console.log('page console: ' + m.text()));
        page.on('pageerror', (e) => check('no script error', false, e.message));
        const cdp = await context.newCDPSession(page);
        const seen = recordNetwork(cdp);
        await cdp.send('Network.enable');
        if (await checkPage(page, seen, o))
            await checkEcho(page);
        if (o.screenshot)
            await page.screenshot({ path: o.screenshot, fullPage: true });
        sockets = checkHandshakes(seen, o.expect);
    } finally {
        await browser.close(); // writes the net-log's end
    }
    checkNetLog(o, sockets);
    return failed;
}

main().then((n) => {
    process.exit(n === 0 ? 0 : 1);
}, (e) => {
    console.log('FAIL: ' + (e && e.stack ? e.stack : e));
    process.exit(1);
});
