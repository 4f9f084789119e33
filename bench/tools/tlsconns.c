/*
 * tlsconns: new TLS connections per second with FULL handshakes.
 *
 * wrk and h2load both resume TLS sessions when they reconnect (wrk keeps the session across
 * SSL_clear, h2load hands it to the next connection), so neither measures what a new client
 * costs. This client never offers a session: each of CONNS threads loops, for SECONDS, over
 * connect, full TLS 1.3 handshake (SNI = HOST), one "GET PATH" with "Connection: close", read to
 * EOF, close. It prints one line:
 *   connections=N errors=E seconds=S rate=R p50_ms=A p99_ms=B
 * where the latencies are per connection (TCP connect to the end of the response).
 *
 * Build: cc -O2 -pthread -o tlsconns tlsconns.c -lssl -lcrypto   (bench/run.sh does this)
 * Usage: tlsconns PORT HOST PATH CONNS SECONDS      (connects to 127.0.0.1:PORT)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 200000

static SSL_CTX *ctx;
static struct sockaddr_in addr;
static const char *host;
static char request[512];
static atomic_int stop;
static atomic_long errors;
static double samples[MAX_SAMPLES];
static atomic_long count;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One connection with one request; 0 when the answer was a 2xx. */
static int one(void) {
    int ok = -1, one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SSL *ssl = NULL;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) goto done;
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, host);
    if (SSL_connect(ssl) != 1) goto done;
    if (SSL_write(ssl, request, (int)strlen(request)) <= 0) goto done;
    char buf[16384], head[16] = {0};
    int got, total = 0;
    while ((got = SSL_read(ssl, buf, sizeof buf)) > 0) {
        if (total < 12) memcpy(head + total, buf, (size_t)(got < 12 - total ? got : 12 - total));
        total += got;
    }
    if (strncmp(head, "HTTP/1.1 2", 10) == 0) ok = 0;
done:
    if (ssl) SSL_free(ssl);
    close(fd);
    return ok;
}

static void *worker(void *unused) {
    (void)unused;
    while (!atomic_load(&stop)) {
        double started = now();
        int failed = one();
        if (atomic_load(&stop)) break; /* finished after the clock stopped: not counted */
        if (failed) {
            atomic_fetch_add(&errors, 1);
            continue;
        }
        long at = atomic_fetch_add(&count, 1);
        if (at < MAX_SAMPLES) samples[at] = now() - started;
    }
    return NULL;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s PORT HOST PATH CONNS SECONDS\n", argv[0]);
        return 2;
    }
    host = argv[2];
    int conns = atoi(argv[4]);
    double seconds = atof(argv[5]);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[1]));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    snprintf(request, sizeof request,
             "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", argv[3], host);

    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);

    pthread_t threads[1024];
    if (conns < 1 || conns > 1024) return 2;
    double started = now();
    for (int i = 0; i < conns; i++) pthread_create(&threads[i], NULL, worker, NULL);
    struct timespec wait = {(time_t)seconds, (long)((seconds - (long)seconds) * 1e9)};
    nanosleep(&wait, NULL);
    atomic_store(&stop, 1);
    double elapsed = now() - started;
    for (int i = 0; i < conns; i++) pthread_join(threads[i], NULL);

    long n = atomic_load(&count), kept = n < MAX_SAMPLES ? n : MAX_SAMPLES;
    qsort(samples, (size_t)kept, sizeof samples[0], by_value);
    double p50 = kept ? samples[kept / 2] * 1000 : 0, p99 = kept ? samples[kept * 99 / 100] * 1000 : 0;
    printf("connections=%ld errors=%ld seconds=%.3f rate=%.1f p50_ms=%.3f p99_ms=%.3f\n", n,
           atomic_load(&errors), elapsed, n / elapsed, p50, p99);
    return 0;
}
