"""WebSocket echo server for bench_ws_echo: Debian's python3-websockets
(asyncio), defaults except compression (off, as strata's client does not
offer it), keepalive pings (off: they would land inside measurements) and
the message limit (16 MiB, as strata's default). Every message goes back as
it came. Prints "PORT <n>" once it listens on 127.0.0.1 (port 0 picks a
free one) and runs until killed.

    /usr/bin/python3 echo_server.py [port]
"""
import asyncio
import signal
import sys

import websockets


async def echo(ws, path=None):
    # 10.x passes the path as a second argument; later versions do not.
    try:
        async for msg in ws:
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass  # a client that goes away mid-run is not the server's failure


async def main(port):
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, stop.set_result, None)
    async with websockets.serve(echo, "127.0.0.1", port, compression=None,
                                ping_interval=None, max_size=16 << 20) as srv:
        print("PORT %d" % srv.sockets[0].getsockname()[1], flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
