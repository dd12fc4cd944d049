/* hello_lines: the README's example. A stack of two layers, lines over
 * TCP, built by hand: send three lines to an echo server, print the
 * replies. Run `strata listen lines+tcp://127.0.0.1:7000 --echo` first. */
#include <stdio.h>
#include <string.h>

#include <strata/blocking.h>
#include <strata/line.h>
#include <strata/socket.h>

int main(int argc, char **argv)
{
    const char *said[] = {"hello", "stackable", "world"};
    strata_stream *tcp, *lines;
    char reply[256];
    int i;

    if (strata_tcp_connect(argc > 1 ? argv[1] : "127.0.0.1",
                           argc > 2 ? argv[2] : "7000", NULL, &tcp) != 0)
        return 1;
    lines = strata_line_new(tcp, NULL, NULL); /* now owns tcp */
    for (i = 0; i < 3; i++) {
        ssize_t n = strata_write_all(lines, said[i], strlen(said[i]),
                                     STRATA_MSG_END, 5000);
        if (n >= 0)
            n = strata_recv_msg(lines, reply, sizeof reply, NULL, 5000);
        if (n < 0) {
            fprintf(stderr, "hello_lines: %s\n", strata_strerror((int)n));
            strata_free(lines);
            return 1;
        }
        printf("sent \"%s\", got back \"%.*s\"\n", said[i], (int)n, reply);
    }
    strata_free(lines);
    return 0;
}
