#!/usr/bin/python3
"""gRPC interop test server (grpc.testing.TestService) on Debian's grpcio.

The peer strata's interop_client is checked against: it behaves as gRPC's
own interop servers do (doc/interop-test-descriptions.md of gRPC): EmptyCall,
UnaryCall, StreamingOutputCall, StreamingInputCall, FullDuplexCall,
HalfDuplexCall, with Echo Status, Echo Metadata and interval_us. Methods are
registered by name with grpc.method_handlers_generic_handler, so no gRPC
code generator is needed; the message classes come from protoc --python_out
(made from ./proto into a temporary folder when not importable).

    grpc_interop_server.py --port=P [--use_tls=true --tls_cert_file=F
                           --tls_key_file=F]

With --port=0 the port chosen is printed on stdout ("listening on port P").
SIGTERM / SIGINT stop it cleanly (exit status 0).
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
CODES = {s.value[0]: s for s in grpc.StatusCode}


def load_messages():
    """The generated modules: importable already (PYTHONPATH), or made
    here with protoc from the .proto files beside this script."""
    try:
        import empty_pb2
        import messages_pb2
    except ImportError:
        proto = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proto")
        out = tempfile.mkdtemp(prefix="grpc_interop_pb.")
        names = [n for n in sorted(os.listdir(proto)) if n.endswith(".proto")]
        subprocess.run(["protoc", "--python_out=" + out, "-I", proto] + names,
                       cwd=proto, check=True)
        sys.path.insert(0, out)
        import empty_pb2
        import messages_pb2
    return empty_pb2, messages_pb2


empty_pb2, messages_pb2 = load_messages()


def flag_true(v):
    return v.lower() in ("true", "1", "yes")


def echo_metadata(context):
    """Echo Metadata: the initial key back in the response head, the
    trailing one in the trailers."""
    md = dict(context.invocation_metadata())
    if ECHO_INITIAL in md:
        context.send_initial_metadata(((ECHO_INITIAL, md[ECHO_INITIAL]),))
    if ECHO_TRAILING in md:
        context.set_trailing_metadata(((ECHO_TRAILING, md[ECHO_TRAILING]),))


def echo_status(request, context):
    """Echo Status: end the call with the status the request names."""
    if request.HasField("response_status"):
        code = request.response_status.code
        context.set_code(CODES.get(code, grpc.StatusCode.UNKNOWN))
        context.set_details(request.response_status.message)
        return True
    return False


def payload(size):
    return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE,
                                body=b"\0" * size)


def responses_for(request):
    """One response per ResponseParameters, each after its interval."""
    for p in request.response_parameters:
        if p.interval_us > 0:
            time.sleep(p.interval_us / 1e6)
        yield messages_pb2.StreamingOutputCallResponse(payload=payload(p.size))


def empty_call(request, context):
    echo_metadata(context)
    return empty_pb2.Empty()


def unary_call(request, context):
    echo_metadata(context)
    echo_status(request, context)
    return messages_pb2.SimpleResponse(payload=payload(request.response_size))


def streaming_output_call(request, context):
    echo_metadata(context)
    if echo_status(request, context):
        return
    yield from responses_for(request)


def streaming_input_call(request_iterator, context):
    echo_metadata(context)
    total = sum(len(r.payload.body) for r in request_iterator)
    return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)


def full_duplex_call(request_iterator, context):
    echo_metadata(context)
    for request in request_iterator:
        # the status ends the call: no further request is read
        if echo_status(request, context):
            return
        yield from responses_for(request)


def half_duplex_call(request_iterator, context):
    echo_metadata(context)
    requests = list(request_iterator)
    for request in requests:
        if echo_status(request, context):
            return
        yield from responses_for(request)


def handler():
    m = messages_pb2
    e = empty_pb2

    def h(kind, fn, req, resp):
        return kind(fn, request_deserializer=req.FromString,
                    response_serializer=resp.SerializeToString)

    so = m.StreamingOutputCallRequest
    sr = m.StreamingOutputCallResponse
    return grpc.method_handlers_generic_handler("grpc.testing.TestService", {
        "EmptyCall": h(grpc.unary_unary_rpc_method_handler, empty_call, e.Empty, e.Empty),
        "UnaryCall": h(grpc.unary_unary_rpc_method_handler, unary_call,
                       m.SimpleRequest, m.SimpleResponse),
        "StreamingOutputCall": h(grpc.unary_stream_rpc_method_handler,
                                 streaming_output_call, so, sr),
        "StreamingInputCall": h(grpc.stream_unary_rpc_method_handler,
                                streaming_input_call, m.StreamingInputCallRequest,
                                m.StreamingInputCallResponse),
        "FullDuplexCall": h(grpc.stream_stream_rpc_method_handler,
                            full_duplex_call, so, sr),
        "HalfDuplexCall": h(grpc.stream_stream_rpc_method_handler,
                            half_duplex_call, so, sr),
    })


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--use_tls", default="false")
    ap.add_argument("--tls_cert_file")
    ap.add_argument("--tls_key_file")
    a = ap.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((handler(),))
    addr = "127.0.0.1:%d" % a.port
    if flag_true(a.use_tls):
        if not a.tls_cert_file or not a.tls_key_file:
            ap.error("--use_tls=true needs --tls_cert_file and --tls_key_file")
        with open(a.tls_key_file, "rb") as f:
            key = f.read()
        with open(a.tls_cert_file, "rb") as f:
            cert = f.read()
        port = server.add_secure_port(
            addr, grpc.ssl_server_credentials(((key, cert),)))
    else:
        port = server.add_insecure_port(addr)
    if port == 0:
        sys.exit("cannot listen on %s" % addr)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    print("listening on port %d" % port, flush=True)
    while not stop.wait(0.5):
        pass
    server.stop(0).wait()   # SIGTERM ends it cleanly: exit status 0


if __name__ == "__main__":
    main()
