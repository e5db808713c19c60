#define _GNU_SOURCE
/* A plain C io_uring echo server: what a completion backend could reach
   (DESIGN.md's io_uring backend is not built; see docs/design.md). One
   multishot accept; per connection a recv, then a send of what came, then a
   recv again; every completion of an iteration is handled before one
   io_uring_submit_and_wait() submits the next batch. Short sends are not
   resent (the load generator's messages fit a socket buffer).
   Usage: c_uring_server <port>. */
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { kAccept = 1, kRecv = 2, kSend = 3 };
struct conn {
    int fd;
    char buf[65536];
};

static struct io_uring ring;

static struct io_uring_sqe* sqe(void) {
    struct io_uring_sqe* s;
    while (!(s = io_uring_get_sqe(&ring))) io_uring_submit(&ring);  // queue full: flush it
    return s;
}

static void queue_recv(struct conn* c) {
    struct io_uring_sqe* s = sqe();
    io_uring_prep_recv(s, c->fd, c->buf, sizeof c->buf, 0);
    io_uring_sqe_set_data64(s, (uint64_t)(uintptr_t)c | kRecv);
}

static void drop(struct conn* c) {
    close(c->fd);
    free(c);
}

int main(int argc, char** argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr*)&sa, sizeof sa) < 0 || listen(lfd, 1024) < 0) return perror("bind"), 1;
    int err = io_uring_queue_init(1024, &ring, 0);
    if (err < 0) return fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-err)), 1;
    struct io_uring_sqe* s = sqe();
    io_uring_prep_multishot_accept(s, lfd, NULL, NULL, 0);
    io_uring_sqe_set_data64(s, kAccept);
    printf("ready %d\n", port);
    fflush(stdout);
    for (;;) {
        io_uring_submit_and_wait(&ring, 1);
        struct io_uring_cqe* cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            ++seen;
            uint64_t data = io_uring_cqe_get_data64(cqe);
            struct conn* c = (struct conn*)(uintptr_t)(data & ~(uint64_t)7);
            int res = cqe->res;
            switch (data & 7) {
            case kAccept:
                if (!(cqe->flags & IORING_CQE_F_MORE)) {  // the multishot ended: re-arm it
                    s = sqe();
                    io_uring_prep_multishot_accept(s, lfd, NULL, NULL, 0);
                    io_uring_sqe_set_data64(s, kAccept);
                }
                if (res < 0) break;
                if (!(c = malloc(sizeof *c))) {
                    close(res);
                    break;
                }
                c->fd = res;
                setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                queue_recv(c);
                break;
            case kRecv:
                if (res <= 0) {
                    drop(c);
                    break;
                }
                s = sqe();
                io_uring_prep_send(s, c->fd, c->buf, (size_t)res, 0);
                io_uring_sqe_set_data64(s, (uint64_t)(uintptr_t)c | kSend);
                break;
            case kSend:
                if (res < 0) {
                    drop(c);
                    break;
                }
                queue_recv(c);
                break;
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
}
