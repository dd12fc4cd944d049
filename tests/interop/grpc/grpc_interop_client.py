#!/usr/bin/python3
"""gRPC interop test client (grpc.testing.TestService) on Debian's grpcio.

The peer strata's interop_server is checked against: one test case a run,
as gRPC's doc/interop-test-descriptions.md defines it, with its assertions
(and the optional ones: payload bodies all zeros, exactly N responses, the
final status OK). Methods are called by path with the message classes'
serializers, so no gRPC code generator is needed.

    grpc_interop_client.py --server_host=H --server_port=P --test_case=NAME
        [--use_tls=true --ca_file=F --server_host_override=NAME]

Exit 0 when the case passed; otherwise 1 and a line saying what differed.
"""

import argparse
import os
import queue
import subprocess
import sys
import tempfile

import grpc

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
INITIAL_VALUE = "test_initial_metadata_value"
TRAILING_VALUE = b"\xab\xab\xab"
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
SIZES_IN = (27182, 8, 1828, 45904)       # sum 74922
SIZES_OUT = (31415, 9, 2653, 58979)


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
pb = messages_pb2


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


class Pipe:
    """Requests handed to a streaming call one at a time; close() is the
    half-close."""
    _END = object()

    def __init__(self):
        self._q = queue.Queue()

    def __iter__(self):
        return self

    def __next__(self):
        v = self._q.get()
        if v is Pipe._END:
            raise StopIteration
        return v

    def add(self, v):
        self._q.put(v)

    def close(self):
        self._q.put(Pipe._END)


class Stubs:
    def __init__(self, channel):
        def method(kind, name, req, resp, service="grpc.testing.TestService"):
            return getattr(channel, kind)(
                "/%s/%s" % (service, name),
                request_serializer=req.SerializeToString,
                response_deserializer=resp.FromString)

        e = empty_pb2.Empty
        so, sr = pb.StreamingOutputCallRequest, pb.StreamingOutputCallResponse
        self.empty = method("unary_unary", "EmptyCall", e, e)
        self.unary = method("unary_unary", "UnaryCall", pb.SimpleRequest,
                            pb.SimpleResponse)
        self.output = method("unary_stream", "StreamingOutputCall", so, sr)
        self.input = method("stream_unary", "StreamingInputCall",
                            pb.StreamingInputCallRequest,
                            pb.StreamingInputCallResponse)
        self.duplex = method("stream_stream", "FullDuplexCall", so, sr)
        self.unimpl_method = method("unary_unary", "UnimplementedCall", e, e)
        self.unimpl_service = method("unary_unary", "UnimplementedCall", e, e,
                                     service="grpc.testing.UnimplementedService")


def zeros(n):
    return pb.Payload(type=pb.COMPRESSABLE, body=b"\0" * n)


def check_payload(resp, size, what):
    body = resp.payload.body
    check(resp.payload.type == pb.COMPRESSABLE,
          "%s: payload type %d, want COMPRESSABLE" % (what, resp.payload.type))
    check(len(body) == size,
          "%s: payload body %d bytes, want %d" % (what, len(body), size))
    check(body.count(0) == size, "%s: payload body is not all zeros" % what)


def check_status(call, code, details, what):
    check(call.code() == code,
          "%s: status %s, want %s" % (what, call.code(), code))
    if details is not None:
        check(call.details() == details,
              "%s: message %r, want %r" % (what, call.details(), details))


def check_end(it, what):
    """A response stream that must end here with OK."""
    extra = list(it)
    check(not extra, "%s: %d responses more than expected" % (what, len(extra)))
    check_status(it, grpc.StatusCode.OK, None, what)


def empty_unary(s):
    resp = s.empty(empty_pb2.Empty())
    check(isinstance(resp, empty_pb2.Empty), "response is %s" % type(resp))
    check(resp.ByteSize() == 0, "response has %d bytes" % resp.ByteSize())


def large_unary(s):
    req = pb.SimpleRequest(response_type=pb.COMPRESSABLE, response_size=314159,
                           payload=zeros(271828))
    check_payload(s.unary(req), 314159, "response")


def client_streaming(s):
    reqs = (pb.StreamingInputCallRequest(payload=zeros(n)) for n in SIZES_IN)
    resp = s.input(reqs)
    check(resp.aggregated_payload_size == 74922,
          "aggregated_payload_size %d, want 74922" % resp.aggregated_payload_size)


def server_streaming(s):
    req = pb.StreamingOutputCallRequest(
        response_type=pb.COMPRESSABLE,
        response_parameters=[pb.ResponseParameters(size=n) for n in SIZES_OUT])
    it = s.output(req)
    got = list(it)
    check(len(got) == 4, "%d responses, want 4" % len(got))
    for i, (resp, n) in enumerate(zip(got, SIZES_OUT)):
        check_payload(resp, n, "response %d" % i)
    check_status(it, grpc.StatusCode.OK, None, "call")


def ping_pong(s):
    pipe = Pipe()
    it = s.duplex(pipe)
    for i, (out, inn) in enumerate(zip(SIZES_OUT, SIZES_IN)):
        pipe.add(pb.StreamingOutputCallRequest(
            response_type=pb.COMPRESSABLE,
            response_parameters=[pb.ResponseParameters(size=out)],
            payload=zeros(inn)))
        check_payload(next(it), out, "response %d" % i)
    pipe.close()
    check_end(it, "after 4 responses")


def empty_stream(s):
    pipe = Pipe()
    it = s.duplex(pipe)
    pipe.close()
    check_end(it, "empty stream")


def custom_metadata(s):
    md = ((ECHO_INITIAL, INITIAL_VALUE), (ECHO_TRAILING, TRAILING_VALUE))

    def check_md(call, what):
        init = dict(call.initial_metadata())
        trail = dict(call.trailing_metadata())
        check(init.get(ECHO_INITIAL) == INITIAL_VALUE,
              "%s: initial %s is %r, want %r" % (what, ECHO_INITIAL,
                                                  init.get(ECHO_INITIAL), INITIAL_VALUE))
        check(trail.get(ECHO_TRAILING) == TRAILING_VALUE,
              "%s: trailing %s is %r, want %r" % (what, ECHO_TRAILING,
                                                   trail.get(ECHO_TRAILING), TRAILING_VALUE))

    req = pb.SimpleRequest(response_type=pb.COMPRESSABLE, response_size=314159,
                           payload=zeros(271828))
    resp, call = s.unary.with_call(req, metadata=md)
    check_payload(resp, 314159, "UnaryCall response")
    check_md(call, "UnaryCall")

    pipe = Pipe()
    it = s.duplex(pipe, metadata=md)
    pipe.add(pb.StreamingOutputCallRequest(
        response_type=pb.COMPRESSABLE,
        response_parameters=[pb.ResponseParameters(size=314159)],
        payload=zeros(271828)))
    check_payload(next(it), 314159, "FullDuplexCall response")
    pipe.close()
    check_end(it, "FullDuplexCall")
    check_md(it, "FullDuplexCall")


def echo_status_unary(s, message):
    req = pb.SimpleRequest(response_type=pb.COMPRESSABLE, response_size=1,
                           payload=zeros(1),
                           response_status=pb.EchoStatus(code=2, message=message))
    fut = s.unary.future(req)
    check_status(fut, grpc.StatusCode.UNKNOWN, message, "UnaryCall")


def status_code_and_message(s):
    message = "test status message"
    echo_status_unary(s, message)
    pipe = Pipe()
    it = s.duplex(pipe)
    pipe.add(pb.StreamingOutputCallRequest(
        response_type=pb.COMPRESSABLE,
        response_parameters=[pb.ResponseParameters(size=1)],
        payload=zeros(1),
        response_status=pb.EchoStatus(code=2, message=message)))
    pipe.close()
    try:
        list(it)
    except grpc.RpcError:
        pass
    check_status(it, grpc.StatusCode.UNKNOWN, message, "FullDuplexCall")


def special_status_message(s):
    echo_status_unary(s, SPECIAL_MESSAGE)


def unimplemented(stub, what):
    fut = stub.future(empty_pb2.Empty())
    check_status(fut, grpc.StatusCode.UNIMPLEMENTED, None, what)


def unimplemented_method(s):
    unimplemented(s.unimpl_method, "TestService/UnimplementedCall")


def unimplemented_service(s):
    unimplemented(s.unimpl_service, "UnimplementedService/UnimplementedCall")


def cancel_after_begin(s):
    pipe = Pipe()
    fut = s.input.future(pipe)
    fut.cancel()
    check(fut.cancelled(), "the future does not say cancelled")
    check_status(fut, grpc.StatusCode.CANCELLED, None, "call")
    pipe.close()


def cancel_after_first_response(s):
    pipe = Pipe()
    it = s.duplex(pipe)
    pipe.add(pb.StreamingOutputCallRequest(
        response_type=pb.COMPRESSABLE,
        response_parameters=[pb.ResponseParameters(size=31415)],
        payload=zeros(27182)))
    check_payload(next(it), 31415, "first response")
    it.cancel()
    try:
        next(it)
        raise Failed("a response after the cancel")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.CANCELLED,
              "status %s, want CANCELLED" % e.code())
    finally:
        pipe.close()


def timeout_on_sleeping_server(s):
    pipe = Pipe()
    it = s.duplex(pipe, timeout=0.001)
    pipe.add(pb.StreamingOutputCallRequest(response_type=pb.COMPRESSABLE,
                                           payload=zeros(27182)))
    try:
        next(it)
        raise Failed("a response, want DEADLINE_EXCEEDED")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.DEADLINE_EXCEEDED,
              "status %s, want DEADLINE_EXCEEDED" % e.code())
    finally:
        pipe.close()


CASES = {f.__name__: f for f in (
    empty_unary, large_unary, client_streaming, server_streaming, ping_pong,
    empty_stream, custom_metadata, status_code_and_message,
    special_status_message, unimplemented_method, unimplemented_service,
    cancel_after_begin, cancel_after_first_response,
    timeout_on_sleeping_server)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server_host", default="127.0.0.1")
    ap.add_argument("--server_port", type=int, required=True)
    ap.add_argument("--test_case", required=True, choices=sorted(CASES))
    ap.add_argument("--use_tls", default="false")
    ap.add_argument("--ca_file")
    ap.add_argument("--server_host_override")
    a = ap.parse_args()

    target = "%s:%d" % (a.server_host, a.server_port)
    opts = []
    if a.use_tls.lower() in ("true", "1", "yes"):
        if not a.ca_file:
            ap.error("--use_tls=true needs --ca_file")
        with open(a.ca_file, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        if a.server_host_override:
            opts.append(("grpc.ssl_target_name_override", a.server_host_override))
        channel = grpc.secure_channel(target, creds, options=opts)
    else:
        if a.server_host_override:
            opts.append(("grpc.default_authority", a.server_host_override))
        channel = grpc.insecure_channel(target, options=opts)
    try:
        with channel:
            CASES[a.test_case](Stubs(channel))
    except Failed as e:
        print("FAIL %s: %s" % (a.test_case, e), file=sys.stderr)
        return 1
    except grpc.RpcError as e:
        print("FAIL %s: call failed with %s: %r" % (a.test_case, e.code(), e.details()),
              file=sys.stderr)
        return 1
    print("PASS %s" % a.test_case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
