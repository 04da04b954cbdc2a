// SPDX-License-Identifier: MIT
/*
 * pxcached's warm roll (--handover SOCKET): a new pxcached takes the
 * cache of the running one over without copying it.  The running server
 * keeps its cache on a memfd and waits for a successor on the Unix
 * socket SOCKET (mode 0600; a peer of another user is refused).  The
 * exchange, one line each way and the memfd:
 *
 *   new -> old  "PXCACHED-HANDOVER <layout id, hex>\n"
 *   old -> new  "REFUSED <reason>\n"  (layout differs: the old serves on;
 *               so does it when the new one hung up before it stopped)
 *               or, once it stopped like on SIGTERM (listeners closed,
 *               requests in flight answered, connections closed),
 *               "CACHE <backing>\n" with the memfd (SCM_RIGHTS)
 *   new -> old  "ADOPTED\n", or "FAILED <reason>\n"
 *   old         releases FILE.lock (--snapshot), closes, exits 0; on
 *               FAILED or silence it adopts its cache back, saves its
 *               final snapshot (--snapshot) and exits 1
 *   new         waits for the old one to close, then serves the port and
 *               SOCKET.
 *
 * Clients see the port closed from the old server's stop until the new
 * one listens: the time to finish the requests in flight plus a few
 * milliseconds, whatever the size of the cache.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <patinox/error.h>

#include "../common/log.h"
#include "pxcached.h"

#define HO_HELLO    "PXCACHED-HANDOVER"
#define HO_LINE_MAX 128
#define HO_ASK_MS   5000   /* a connected peer must ask within this */
#define HO_REPLY_MS 120000 /* the old server's stop, or the adoption */
#define HO_DEATH_MS 5000   /* a successor that hung up: until it is gone */

static const char *const backings[] = {"hugetlb-2M", "thp", "4K"};

static int
ho_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

/* Waits up to @ms for @fd to be readable: 0, -ETIMEDOUT or -errno. */
static int
wait_readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n;

	do
		n = poll(&p, 1, ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

/*
 * One line (without its newline) and at most one passed fd into *@fd
 * (-1 if none).  Returns the line's length, -ETIMEDOUT, -EPIPE when the
 * peer closed first, -EPROTO for a line without its newline.
 */
static int
recv_line(int sock, char *buf, size_t cap, int *fd, int ms)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = buf, .iov_len = cap - 1};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl,
			     .msg_controllen = sizeof(ctl)};
	struct cmsghdr *cm;
	ssize_t n;
	int rc;

	*fd = -1;
	rc = wait_readable(sock, ms);
	if (rc < 0)
		return rc;
	n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	cm = CMSG_FIRSTHDR(&msg);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(cm), sizeof(int));
	if (n == 0)
		return -EPIPE;
	buf[n] = 0;
	if (buf[n - 1] != '\n')
		return -EPROTO;
	buf[n - 1] = 0;
	return (int)n - 1;
}

/* Sends @line, with @fd attached when it is >= 0: 0 or -errno. */
static int
send_line(int sock, const char *line, int fd)
{
	char ctl[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = (void *)line, .iov_len = strlen(line)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;

	if (fd >= 0) {
		msg.msg_control = ctl;
		msg.msg_controllen = sizeof(ctl);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	if (sendmsg(sock, &msg, MSG_NOSIGNAL) != (ssize_t)iov.iov_len)
		return errno ? -errno : -EIO;
	return 0;
}

/* ---- The successor's side ---------------------------------------- */

static const char *
known_backing(const char *name)
{
	for (size_t i = 0; i < sizeof(backings) / sizeof(backings[0]); i++)
		if (!strcmp(name, backings[i]))
			return backings[i];
	return "unknown";
}

static int
adopt(struct pxc_server *s, int sock, int fd, const char *backing)
{
	struct px_cache_memory m;
	char line[HO_LINE_MAX];
	int rc = px_cache_adopt(&s->cache, fd, NULL);

	close(fd);
	if (rc < 0) {
		snprintf(line, sizeof(line), "FAILED %s\n", px_strerror(rc));
		send_line(sock, line, -1);
		LOG_ERROR("handover %s: cannot adopt the cache: %s",
			  s->opts.handover, px_strerror(rc));
		return rc;
	}
	px_cache_memory(s->cache, &m);
	s->backing = known_backing(backing);
	s->backing_note = " (taken over)";
	s->ho.adopted = true;
	if (m.limit >> 20 != s->opts.memory_mb)
		LOG_WARN("handover %s: -m %llu ignored: the cache taken over "
			 "has %llu MiB",
			 s->opts.handover,
			 (unsigned long long)s->opts.memory_mb,
			 (unsigned long long)(m.limit >> 20));
	s->opts.memory_mb = m.limit >> 20;
	LOG_NOTICE("handover %s: took over a cache of %zu items (%llu MiB, "
		   "%s)",
		   s->opts.handover, (size_t)m.items,
		   (unsigned long long)s->opts.memory_mb, s->backing);
	return send_line(sock, "ADOPTED\n", -1);
}

/* The old server answers: take its cache, then wait until it let go. */
static int
take(struct pxc_server *s, int sock)
{
	char line[HO_LINE_MAX];
	int fd, rc;

	rc = recv_line(sock, line, sizeof(line), &fd, HO_REPLY_MS);
	if (rc >= 0 && !strncmp(line, "CACHE ", 6) && fd >= 0) {
		rc = adopt(s, sock, fd, line + 6);
		if (rc ==
		    0) /* its FILE.lock and port are free when it closes */
			recv_line(sock, line, sizeof(line), &fd, HO_REPLY_MS);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if (fd >= 0)
		close(fd);
	if (rc >= 0)
		LOG_ERROR("handover %s: the running server says: %s",
			  s->opts.handover, line);
	else
		LOG_ERROR("handover %s: no answer from the running server: %s",
			  s->opts.handover, strerror(-rc));
	return rc >= 0 ? -EPERM : rc;
}

int
pxc_ho_takeover(struct pxc_server *s)
{
	struct sockaddr_un sa;
	char hello[HO_LINE_MAX];
	int sock, rc;

	s->ho.listen_fd = s->ho.peer_fd = s->ho.checking = -1;
	pthread_mutex_init(&s->ho.lock, NULL);
	if (!s->opts.handover)
		return 0;
	/* Refuse now what would make the server fail with the cache in
	 * hand (the old server has stopped by then). */
	rc = pxc_snap_check(s);
	if (rc < 0)
		return rc;
	rc = ho_addr(s->opts.handover, &sa);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (rc < 0 || sock < 0)
		return rc < 0 ? rc : -errno;
	if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		close(sock);
		if (rc != -ENOENT && rc != -ECONNREFUSED) {
			LOG_ERROR("handover %s: %s", s->opts.handover,
				  strerror(-rc));
			return rc;
		}
		LOG_NOTICE("handover %s: no pxcached to take over, starting "
			   "anew",
			   s->opts.handover);
		return 0;
	}
	snprintf(hello, sizeof(hello), HO_HELLO " %016" PRIx64 "\n",
		 px_cache_layout_id());
	rc = send_line(sock, hello, -1);
	if (rc == 0)
		rc = take(s, sock);
	close(sock);
	return rc;
}

/* ---- The running server's side ------------------------------------ */

/* A peer of our own user (or root) that asks in the right words. */
static int
check_peer(struct pxc_server *s, int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	char line[HO_LINE_MAX], want[HO_LINE_MAX];
	int pfd, rc;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return -errno;
	if (cr.uid != geteuid() && cr.uid != 0) {
		LOG_WARN("handover %s: refused pid %ld of uid %u",
			 s->opts.handover, (long)cr.pid, (unsigned)cr.uid);
		return -EPERM;
	}
	rc = recv_line(fd, line, sizeof(line), &pfd, HO_ASK_MS);
	if (pfd >= 0)
		close(pfd);
	if (rc < 0)
		return rc;
	snprintf(want, sizeof(want), HO_HELLO " %016" PRIx64,
		 px_cache_layout_id());
	if (strncmp(line, HO_HELLO " ", sizeof(HO_HELLO)))
		return -EPROTO;
	if (strcmp(line, want)) {
		send_line(fd,
			  "REFUSED its cache layout differs (another "
			  "build)\n",
			  -1);
		LOG_WARN("handover %s: pid %ld runs a build of another cache "
			 "layout; serving on",
			 s->opts.handover, (long)cr.pid);
		return -EPROTO;
	}
	s->ho.peer_pid = cr.pid;
	return 0;
}

/*
 * Records the peer being checked (-1: none) so that pxc_ho_close() can
 * cut its wait short; false, with @fd closed, once closing.
 */
static bool
ho_checking(struct pxc_server *s, int fd)
{
	bool ok;

	pthread_mutex_lock(&s->ho.lock);
	ok = !s->ho.closing || fd < 0;
	s->ho.checking = ok ? fd : -1;
	pthread_mutex_unlock(&s->ho.lock);
	if (!ok)
		close(fd);
	return ok;
}

/* Waits for a successor; when one asks, stops the server (SIGUSR1). */
static void *
ho_main(void *arg)
{
	struct pxc_server *s = arg;
	int fd, rc;

	for (;;) {
		fd = accept4(s->ho.listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0 || !ho_checking(s, fd))
			return NULL; /* shut down by pxc_ho_close() */
		rc = check_peer(s, fd);
		ho_checking(s, -1);
		if (rc == 0)
			break;
		close(fd);
	}
	s->ho.peer_fd = fd;
	atomic_store(&s->ho.requested, true);
	kill(getpid(), SIGUSR1);
	return NULL;
}

static int
ho_start(struct pxc_server *s)
{
	if (pthread_create(&s->ho.thread, NULL, ho_main, s) != 0) {
		LOG_ERROR("handover %s: cannot start its thread",
			  s->opts.handover);
		return -EAGAIN;
	}
	s->ho.running = true;
	return 0;
}

int
pxc_ho_listen(struct pxc_server *s)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, rc;

	if (!s->opts.handover)
		return 0;
	rc = ho_addr(s->opts.handover, &sa);
	if (rc < 0)
		return rc;
	/* Left by the server we took over from, or by a crash. */
	if (lstat(s->opts.handover, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(s->opts.handover);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Peers of other users are refused by SO_PEERCRED anyway; the mode
	 * keeps them from connecting at all (chmod, not umask: the snapshot
	 * thread may be creating a file at this moment). */
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (rc == 0)
		rc = chmod(s->opts.handover, 0600);
	if (rc == 0)
		rc = listen(fd, 4);
	if (rc < 0) {
		rc = -errno;
		LOG_ERROR("handover %s: cannot listen: %s", s->opts.handover,
			  strerror(-rc));
		close(fd);
		return rc;
	}
	s->ho.listen_fd = fd;
	return ho_start(s);
}

/*
 * A successor that asked and hung up before the server stopped (it
 * crashed, was killed, or was a probe) can take nothing: stopping for it
 * would only end the service.  Its peer may still be in the accept
 * queue behind; this catches the common case, a later hang-up is the
 * "silence" of pxc_ho_give().
 */
bool
pxc_ho_still_asking(struct pxc_server *s)
{
	struct pollfd p = {.fd = s->ho.peer_fd, .events = POLLRDHUP};

	if (poll(&p, 1, 0) == 0)
		return true;
	LOG_WARN("handover %s: pid %ld asked for the cache and hung up; "
		 "serving on",
		 s->opts.handover, s->ho.peer_pid);
	pthread_join(s->ho.thread, NULL);
	s->ho.running = false;
	close(s->ho.peer_fd);
	s->ho.peer_fd = -1;
	atomic_store(&s->ho.requested, false);
	return ho_start(s) < 0; /* no thread: stop rather than not listen */
}

/* Whether process @pid is gone (or a zombie, whose memory is gone). */
static bool
pid_gone(long pid)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the name may hold anything */
	return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* Waits up to HO_DEATH_MS for the successor to be gone. */
static bool
successor_gone(const struct pxc_server *s)
{
	for (int ms = 0; ms < HO_DEATH_MS; ms += 10) {
		if (pid_gone(s->ho.peer_pid))
			return true;
		usleep(10000);
	}
	return false;
}

/*
 * The successor failed: the cache comes back to this process.  One that
 * died after its adopt (killed before it answered) left the cache marked
 * as adopted: once it is gone for sure, nobody else maps it and
 * px_cache_reclaim() takes it back.
 */
static int
take_back(struct pxc_server *s, int fd, const char *why)
{
	int rc = px_cache_adopt(&s->cache, fd, NULL);

	if (rc == -EBUSY && successor_gone(s))
		rc = px_cache_reclaim(&s->cache, fd, NULL);
	LOG_ERROR("handover %s: pid %ld did not take the cache (%s); %s",
		  s->opts.handover, s->ho.peer_pid, why,
		  rc ? "and it cannot be taken back" : "keeping it");
	return rc ? rc : -ECANCELED;
}

int
pxc_ho_give(struct pxc_server *s)
{
	char line[HO_LINE_MAX];
	size_t items = px_cache_items(s->cache);
	int fd, pfd, rc;

	rc = px_cache_handover(s->cache, &fd);
	if (rc < 0) {
		snprintf(line, sizeof(line), "REFUSED %s\n", px_strerror(rc));
		send_line(s->ho.peer_fd, line, -1);
		LOG_ERROR("handover %s: cannot hand the cache over: %s",
			  s->opts.handover, px_strerror(rc));
		return rc;
	}
	s->cache = NULL;
	snprintf(line, sizeof(line), "CACHE %s\n", s->backing);
	rc = send_line(s->ho.peer_fd, line, fd);
	if (rc == 0)
		rc = recv_line(s->ho.peer_fd, line, sizeof(line), &pfd,
			       HO_REPLY_MS);
	if (rc >= 0 && pfd >= 0)
		close(pfd);
	if (rc < 0 || strcmp(line, "ADOPTED")) {
		rc = take_back(s, fd, rc < 0 ? strerror(-rc) : line);
		close(fd);
		return rc;
	}
	close(fd);
	pxc_snap_unlock(s); /* the successor locks FILE next */
	LOG_NOTICE("handover %s: pid %ld took the cache over (%zu items)",
		   s->opts.handover, s->ho.peer_pid, items);
	return 0;
}

void
pxc_ho_close(struct pxc_server *s)
{
	if (s->ho.running) {
		/* A peer that has not asked yet is cut off, not waited for. */
		pthread_mutex_lock(&s->ho.lock);
		s->ho.closing = true;
		if (s->ho.checking >= 0)
			shutdown(s->ho.checking, SHUT_RDWR);
		pthread_mutex_unlock(&s->ho.lock);
		shutdown(s->ho.listen_fd, SHUT_RDWR);
		pthread_join(s->ho.thread, NULL);
		s->ho.running = false;
	}
	if (s->ho.listen_fd >= 0) {
		close(s->ho.listen_fd);
		s->ho.listen_fd = -1;
		/* Ours unless a successor bound it already (it waits for
		 * peer_fd to close first, so not yet). */
		unlink(s->opts.handover);
	}
	if (s->ho.peer_fd >= 0) {
		close(s->ho.peer_fd);
		s->ho.peer_fd = -1;
	}
}
