// SPDX-License-Identifier: MIT
/*
 * ring_echo: px_ring against epoll on a ping-pong echo over 127.0.0.1.
 * Both servers run at once, each on its own thread pinned to the same
 * CPU; the same client, pinned to another CPU, drives one and then the
 * other for every case (message size x connections).  Prints round trips
 * per second, p50 and p99 round-trip latency, and the ring/epoll ratio.
 *
 * usage: ring_echo [-d seconds] [-w warmup] [-s 16,512,16384] [-c 1,64]
 *                  [-S server_cpu] [-C client_cpu] [-r repeats]
 */
#include <errno.h>
#include <signal.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <patinox/error.h>

#include "../../apps/common/log.h"
#include "../../tests/selftests/loopback.h"
#include "echo.h"

#define MAX_LIST 8

struct opts {
	double seconds;
	double warmup;
	size_t sizes[MAX_LIST];
	int nsizes;
	int conns[MAX_LIST];
	int nconns;
	int server_cpu;
	int client_cpu;
	int repeats;
};

static int
parse_list(const char *s, long *out)
{
	int n = 0;
	char *end;

	while (*s && n < MAX_LIST) {
		out[n++] = strtol(s, &end, 10);
		if (end == s || out[n - 1] <= 0)
			return -1;
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

static void
usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-d seconds] [-w warmup] [-s sizes] [-c conns]\n"
		"          [-S server_cpu] [-C client_cpu] [-r repeats]\n",
		prog);
	exit(2);
}

static void
parse(int argc, char **argv, struct opts *o)
{
	long v[MAX_LIST];
	int ch, n;

	while ((ch = getopt(argc, argv, "d:w:s:c:S:C:r:")) != -1) {
		switch (ch) {
		case 'd':
			o->seconds = atof(optarg);
			break;
		case 'w':
			o->warmup = atof(optarg);
			break;
		case 's':
			n = parse_list(optarg, v);
			if (n < 1)
				usage(argv[0]);
			for (o->nsizes = 0; o->nsizes < n; o->nsizes++)
				o->sizes[o->nsizes] = (size_t)v[o->nsizes];
			break;
		case 'c':
			n = parse_list(optarg, v);
			if (n < 1)
				usage(argv[0]);
			for (o->nconns = 0; o->nconns < n; o->nconns++)
				o->conns[o->nconns] = (int)v[o->nconns];
			break;
		case 'S':
			o->server_cpu = atoi(optarg);
			break;
		case 'C':
			o->client_cpu = atoi(optarg);
			break;
		case 'r':
			o->repeats = atoi(optarg);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (o->seconds <= 0 || o->repeats < 1)
		usage(argv[0]);
}

static void
print_result(const char *name, const struct echo_result *r)
{
	printf("  %-5s %9.0f ops/s  p50 %8.1f us  p99 %8.1f us  "
	       "server cpu %5.2f us/op\n",
	       name, r->ops_per_s, r->p50_us, r->p99_us, r->server_cpu_us);
}

static int
run_case(struct echo_server *srv, const struct echo_case *c, int repeats)
{
	struct echo_result best[2] = {0}, r;

	for (int rep = 0; rep < repeats; rep++) {
		for (int i = 0; i < 2; i++) {
			/* Alternate who goes first, so drift hurts both. */
			int k = (rep % 2) ? 1 - i : i;

			if (echo_client_run(&srv[k], c, &r) < 0) {
				LOG_ERROR("%s: %zu B x %d: %s", srv[k].name,
					  c->msg_size, c->conns,
					  px_strerror(r.error));
				return -1;
			}
			if (r.ops_per_s > best[k].ops_per_s)
				best[k] = r;
		}
	}
	printf("%zu B x %d conn%s (best of %d, %.1f s each)\n", c->msg_size,
	       c->conns, c->conns > 1 ? "s" : "", repeats, c->seconds);
	print_result(srv[0].name, &best[0]);
	print_result(srv[1].name, &best[1]);
	printf("  ratio ring/epoll %.2f (ops/s), %.2f (server cpu per op, "
	       "epoll/ring)\n",
	       best[1].ops_per_s > 0 ? best[0].ops_per_s / best[1].ops_per_s
				     : 0.0,
	       best[0].server_cpu_us > 0
		   ? best[1].server_cpu_us / best[0].server_cpu_us
		   : 0.0);
	fflush(stdout);
	return 0;
}

int
main(int argc, char **argv)
{
	struct opts o = {.seconds = 2,
			 .warmup = 0.3,
			 .sizes = {16, 512, 16384},
			 .nsizes = 3,
			 .conns = {1, 64},
			 .nconns = 2,
			 .server_cpu = 0,
			 .client_cpu = 1,
			 .repeats = 1};
	struct echo_server srv[2];
	int ret = 0;

	parse(argc, argv, &o);
	/* A client closing mid-echo must not kill the benchmark. */
	signal(SIGPIPE, SIG_IGN);
	loopback_raise_nofile();
	memset(srv, 0, sizeof(srv));
	echo_server_ring_init(&srv[0]);
	echo_server_epoll_init(&srv[1]);
	for (int i = 0; i < 2; i++) {
		srv[i].cpu = o.server_cpu;
		ret = srv[i].start(&srv[i]);
		if (ret == 0)
			ret = -pthread_getcpuclockid(srv[i].thread,
						     &srv[i].cpu_clock);
		if (ret < 0) {
			LOG_ERROR("%s server: %s", srv[i].name,
				  px_strerror_in(PX_PART_RING, ret));
			return 1;
		}
	}
	echo_pin(o.client_cpu);
	printf("ring_echo: ping-pong over 127.0.0.1, server cpu %d, client "
	       "cpu %d, %ld cpus online\n",
	       o.server_cpu, o.client_cpu, sysconf(_SC_NPROCESSORS_ONLN));
	for (int s = 0; s < o.nsizes && ret == 0; s++) {
		for (int c = 0; c < o.nconns && ret == 0; c++) {
			struct echo_case ec = {.msg_size = o.sizes[s],
					       .conns = o.conns[c],
					       .seconds = o.seconds,
					       .warmup = o.warmup};

			ret = run_case(srv, &ec, o.repeats);
		}
	}
	for (int i = 0; i < 2; i++)
		srv[i].stop(&srv[i]);
	return ret ? 1 : 0;
}
