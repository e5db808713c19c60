/* Ping-pong load generator: <port> <connections> <message size> <seconds>.
   Each connection sends a message, waits for all of it back, repeats.
   Prints requests per second. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
    if (argc < 5) return fprintf(stderr, "usage: loadgen port conns size seconds\n"), 2;
    int port = atoi(argv[1]), nc = atoi(argv[2]), size = atoi(argv[3]);
    double secs = atof(argv[4]);
    char* msg = malloc(size);
    char* buf = malloc(size);
    memset(msg, 'x', size);
    int* got = calloc(nc, sizeof(int));
    int ep = epoll_create1(0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < nc; ++i) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr*)&sa, sizeof sa) < 0) return perror("connect"), 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event e = {.events = EPOLLIN, .data.u64 = ((unsigned long)i << 32) | (unsigned)fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
        if (write(fd, msg, size) != size) return perror("write"), 1;
    }
    long reqs = 0;
    double t0 = now(), end = t0 + secs;
    struct epoll_event evs[512];
    while (now() < end) {
        int n = epoll_wait(ep, evs, 512, 100);
        for (int k = 0; k < n; ++k) {
            int i = (int)(evs[k].data.u64 >> 32), fd = (int)(evs[k].data.u64 & 0xffffffff);
            ssize_t r = read(fd, buf, size - got[i]);
            if (r <= 0) return fprintf(stderr, "connection lost\n"), 1;
            got[i] += (int)r;
            if (got[i] == size) {
                got[i] = 0;
                ++reqs;
                if (write(fd, msg, size) != size) return perror("write"), 1;
            }
        }
    }
    printf("%.0f\n", reqs / (now() - t0));
    return 0;
}
