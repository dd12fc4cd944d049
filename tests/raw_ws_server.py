# A hand-written WebSocket server for what an echo server never does, used
# by the tool's end-to-end tests: refuse the handshake with 404 (refuse) or
# close at once with code 1008 and a reason (close1008), then wait for the
# client's close and FIN. Plain python3 (socket, hashlib): no WebSocket
# library is involved, so nothing smooths over what the client does.
#
#   python3 raw_ws_server.py MODE PORTFILE   (the port goes in PORTFILE)
import base64, hashlib, os, socket, sys
mode, portfile = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)
srv.settimeout(20)
c, _ = srv.accept()
c.settimeout(20)
head = b""
while b"\r\n\r\n" not in head:
    d = c.recv(4096)
    if not d:
        sys.exit(1)
    head += d
if mode == "refuse":
    c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
else:
    key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
           if l.lower().startswith(b"sec-websocket-key:")][0]
    acc = base64.b64encode(hashlib.sha1(
        key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc +
              b"\r\n\r\n")
    body = (1008).to_bytes(2, "big") + b"policy says no"
    c.sendall(bytes([0x88, len(body)]) + body)
    try:
        while c.recv(4096):  # the client's close, then its FIN
            pass
    except socket.timeout:
        sys.exit(1)
c.close()
