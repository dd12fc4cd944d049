// cpp_server: the C++ gRPC server bench/grpc compares strata's with (see
// bench/README.md, "gRPC"). bench/grpc/run.sh builds it at bench time
// with g++, Debian's libgrpc++ and protoc's C++ and gRPC plugins, so the
// C build of strata never needs C++.
//
// The service of bench.proto, written as a user of gRPC C++ would, with
// the library's defaults (no tuning of threads, quotas or channel args):
//   --api sync      (default) the synchronous API: Bench::Service, the
//                   library's thread pool runs the handlers;
//   --api callback  the callback API: Bench::CallbackService, reactors run
//                   on the library's event engine threads.
// It listens on 127.0.0.1 (cleartext HTTP/2), prints "port=P" once
// listening and serves until killed.
#include "bench.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

namespace {

// Sends StreamRequest.count messages of StreamRequest.size bytes.
class SyncService final : public bench::Bench::Service {
    grpc::Status Echo(grpc::ServerContext *, const bench::Msg *req,
                      bench::Msg *res) override
    {
        res->set_data(req->data());
        return grpc::Status::OK;
    }

    grpc::Status Stream(grpc::ServerContext *, const bench::StreamRequest *req,
                        grpc::ServerWriter<bench::Msg> *w) override
    {
        bench::Msg m;

        m.set_data(std::string(req->size(), 'x'));
        for (uint32_t i = 0; i < req->count(); i++)
            if (!w->Write(m))
                return grpc::Status(grpc::StatusCode::CANCELLED, "gone");
        return grpc::Status::OK;
    }
};

// One server-streaming call: the next message goes when the last is done.
class Streamer final : public grpc::ServerWriteReactor<bench::Msg> {
  public:
    explicit Streamer(const bench::StreamRequest *req) : left_(req->count())
    {
        msg_.set_data(std::string(req->size(), 'x'));
        Next();
    }

  private:
    void OnWriteDone(bool ok) override
    {
        if (!ok) {
            Finish(grpc::Status(grpc::StatusCode::CANCELLED, "gone"));
            return;
        }
        Next();
    }
    void OnDone() override { delete this; }
    void Next()
    {
        if (left_ == 0) {
            Finish(grpc::Status::OK);
            return;
        }
        left_--;
        StartWrite(&msg_);
    }

    uint32_t left_;
    bench::Msg msg_;
};

class CallbackService final : public bench::Bench::CallbackService {
    grpc::ServerUnaryReactor *Echo(grpc::CallbackServerContext *ctx,
                                   const bench::Msg *req,
                                   bench::Msg *res) override
    {
        grpc::ServerUnaryReactor *r = ctx->DefaultReactor();

        res->set_data(req->data());
        r->Finish(grpc::Status::OK);
        return r;
    }

    grpc::ServerWriteReactor<bench::Msg> *
    Stream(grpc::CallbackServerContext *,
           const bench::StreamRequest *req) override
    {
        return new Streamer(req);
    }
};

} // namespace

int main(int argc, char **argv)
{
    std::string api = "sync";
    SyncService sync;
    CallbackService callback;
    grpc::ServerBuilder b;
    int port = 0;

    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--api") == 0 && i + 1 < argc) {
            api = argv[++i];
        } else {
            std::puts("usage: cpp_server [--api sync|callback]\n"
                      "The C++ gRPC server of bench/grpc; prints \"port=P\".");
            return std::strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (api != "sync" && api != "callback") {
        std::fprintf(stderr, "cpp_server: --api is sync or callback\n");
        return 2;
    }
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                       &port);
    if (api == "sync")
        b.RegisterService(&sync);
    else
        b.RegisterService(&callback);
    std::unique_ptr<grpc::Server> server = b.BuildAndStart();
    if (!server || port == 0) {
        std::fprintf(stderr, "cpp_server: cannot listen on 127.0.0.1\n");
        return 1;
    }
    std::printf("port=%d api=%s\n", port, api.c_str());
    std::fflush(stdout);
    server->Wait();
    return 0;
}
