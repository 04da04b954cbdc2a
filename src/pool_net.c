// SPDX-License-Identifier: MIT
/*
 * Built-in pool managers for stream connections on the pool's ring: TCP
 * (IPv4/IPv6) and Unix sockets, connected with io_uring connect and a
 * linked timeout, and a memcached flavour whose health check sends
 * "version" and expects "VERSION ...\r\n" back.  Each pooled value is a
 * struct px_pool_conn wrapping a px_ring_conn; its close goes through the
 * guard when the manager has one, else straight to px_ring_conn_close().
 *
 * A px_pool_conn lives until both the pool destroyed the value and its
 * connection's closed callback ran: send and recv callbacks may still
 * arrive after the pool destroyed the value, and a guard shut down first
 * closes the connection while the pool still holds the value (it then
 * reads as broken, without a ring connection, until the pool drops it).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <patinox/guard.h>
#include <patinox/pool.h>
#include <patinox/ring.h>

struct net_mgr {
	struct px_ring *ring;
	struct px_pool_net_opts o;
};

struct px_pool_conn {
	struct net_mgr *m;
	struct px_pool *pool;
	struct px_pool_obj *obj; /* during a step */
	struct px_ring_op *connect_op;
	struct px_ring_conn *conn;
	struct px_guard_res *gres;
	px_pool_conn_recv_fn user_fn;
	void *user_ctx;
	int fd;
	bool broken;
	bool in_pool; /* the pool has not destroyed the value yet */
	bool checking;
	bool cancelled;
	uint32_t rlen;
	char rbuf[64];
};

static const char version_cmd[] = "version\r\n";

static void
step_end(struct px_pool_conn *pc, int res)
{
	struct px_pool_obj *obj = pc->obj;

	pc->obj = NULL;
	pc->checking = false;
	if (obj)
		px_pool_done(pc->pool, obj, res);
}

/* ------------------------------------------------------------------ */
/* Receiving                                                            */
/* ------------------------------------------------------------------ */

/* The reply to "version": one line starting with "VERSION ". */
static void
check_reply(struct px_pool_conn *pc, const char *data, uint32_t len)
{
	uint32_t room = sizeof(pc->rbuf) - 1 - pc->rlen;

	memcpy(pc->rbuf + pc->rlen, data, len < room ? len : room);
	pc->rlen += len < room ? len : room;
	pc->rbuf[pc->rlen] = '\0';
	if (!strstr(pc->rbuf, "\r\n")) {
		if (pc->rlen == sizeof(pc->rbuf) - 1)
			goto out_broken;
		return;
	}
	if (strncmp(pc->rbuf, "VERSION ", 8) != 0 ||
	    strstr(pc->rbuf, "\r\n") + 2 != pc->rbuf + pc->rlen)
		goto out_broken;
	step_end(pc, 0);
	return;
out_broken:
	pc->broken = true;
	step_end(pc, -EPROTO);
}

static void
on_recv(struct px_ring_conn *conn, struct px_ring_buf *buf, int res, void *ctx)
{
	struct px_pool_conn *pc = ctx;

	if (res <= 0) {
		pc->broken = true;
		if (pc->checking)
			step_end(pc, res ? res : -ECONNRESET);
		else if (pc->user_fn)
			pc->user_fn(pc, NULL, res, pc->user_ctx);
		return;
	}
	if (pc->checking)
		check_reply(pc, buf->data, buf->len);
	else if (pc->user_fn)
		pc->user_fn(pc, buf->data, res, pc->user_ctx);
	else
		pc->broken = true; /* bytes nobody asked for: out of sync */
	px_ring_buf_put(px_ring_conn_ring(conn), buf);
}

/* ------------------------------------------------------------------ */
/* Create                                                               */
/* ------------------------------------------------------------------ */

static void
on_closed(struct px_ring_conn *conn, int res, void *ctx)
{
	struct px_pool_conn *pc = ctx;
	struct px_guard_res *gres = pc->gres;

	pc->gres = NULL;
	pc->conn = NULL;
	pc->broken = true;
	if (gres)
		px_guard_cleanup_done(gres, res);
	if (!pc->in_pool)
		free(pc);
}

static int
guard_cleanup(struct px_guard_res *res, void *ctx)
{
	struct px_pool_conn *pc = ctx;

	if (px_ring_conn_close(pc->conn, on_closed, pc) < 0) {
		pc->gres = NULL; /* closing already (the ring is going away) */
		return -EALREADY;
	}
	return PX_GUARD_PENDING;
}

static int
adopt(struct px_pool_conn *pc)
{
	int ret;

	ret =
	    px_ring_conn_create(pc->m->ring, pc->fd, 0, on_recv, pc, &pc->conn);
	pc->fd = -1; /* owned by the connection now, even on failure */
	if (ret < 0)
		return ret;
	ret = px_ring_conn_recv_start(pc->conn);
	if (ret < 0 && ret != -ENOTSUP)
		return ret;
	if (pc->m->o.guard)
		px_guard_add(pc->m->o.guard, PX_GUARD_POOL_OBJ, guard_cleanup,
			     pc, &pc->gres);
	return 0;
}

static void
on_connected(struct px_ring *ring, int res, bool more, void *ctx)
{
	struct px_pool_conn *pc = ctx;

	pc->connect_op = NULL;
	if (res == 0 && pc->cancelled)
		res = -ECANCELED;
	if (res < 0) {
		close(pc->fd);
		pc->fd = -1;
		step_end(pc, res);
		return;
	}
	step_end(pc, adopt(pc));
}

static void
net_create(struct px_pool *pool, struct px_pool_obj *obj, void *arg)
{
	struct net_mgr *m = arg;
	struct px_pool_conn *pc = calloc(1, sizeof(*pc));
	int ret;

	if (!pc) {
		px_pool_done(pool, obj, -ENOMEM);
		return;
	}
	pc->m = m;
	pc->pool = pool;
	pc->obj = obj;
	pc->in_pool = true;
	px_pool_obj_set_value(obj, pc); /* destroyed by the pool on failure */
	pc->fd = socket(m->o.addr.ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (pc->fd < 0) {
		step_end(pc, -errno);
		return;
	}
	ret = px_ring_connect(m->ring, pc->fd, (struct sockaddr *)&m->o.addr,
			      m->o.addr_len, m->o.connect_timeout_ms,
			      on_connected, pc, &pc->connect_op);
	if (ret < 0) {
		close(pc->fd);
		pc->fd = -1;
		step_end(pc, ret);
	}
}

/* ------------------------------------------------------------------ */
/* Recycle, cancel, destroy                                             */
/* ------------------------------------------------------------------ */

static void
on_version_sent(struct px_ring_conn *conn, int res, void *ctx)
{
	struct px_pool_conn *pc = ctx;

	if (res < 0 && pc->checking) {
		pc->broken = true;
		step_end(pc, res);
	}
}

static void
net_recycle(struct px_pool *pool, struct px_pool_obj *obj, void *arg)
{
	struct px_pool_conn *pc = px_pool_obj_value(obj);
	struct iovec iov = {(void *)version_cmd, sizeof(version_cmd) - 1};
	int ret;

	pc->user_fn = NULL;
	pc->user_ctx = NULL;
	if (pc->broken || !pc->conn) {
		px_pool_done(pool, obj, -ECONNRESET);
		return;
	}
	if (pc->m->o.proto != PX_POOL_PROTO_MEMCACHED) {
		px_pool_done(pool, obj, 0);
		return;
	}
	pc->pool = pool;
	pc->obj = obj;
	pc->checking = true;
	pc->rlen = 0;
	ret = px_ring_conn_send(pc->conn, &iov, 1, on_version_sent, pc);
	if (ret < 0) {
		pc->broken = true;
		step_end(pc, ret);
	}
}

static void
net_cancel(struct px_pool *pool, struct px_pool_obj *obj, void *arg)
{
	struct px_pool_conn *pc = px_pool_obj_value(obj);

	if (!pc)
		return;
	if (pc->connect_op) {
		pc->cancelled = true;
		px_ring_cancel(pc->m->ring, pc->connect_op);
		return; /* on_connected ends the step */
	}
	if (pc->checking) {
		pc->broken = true; /* a late reply must not be taken for data */
		step_end(pc, -ECANCELED);
	}
}

/* Back from the caller: its recv callback and context stop here, and
 * bytes that arrive while idle mark the connection broken (on_recv). */
static void
net_put(struct px_pool *pool, void *value, void *arg)
{
	struct px_pool_conn *pc = value;

	pc->user_fn = NULL;
	pc->user_ctx = NULL;
}

static void
net_destroy(struct px_pool *pool, void *value, void *arg)
{
	struct px_pool_conn *pc = value;

	pc->obj = NULL;
	pc->checking = false;
	pc->user_fn = NULL;
	pc->in_pool = false;
	if (!pc->conn) {
		free(pc);
		return;
	}
	if (pc->gres)
		px_guard_release(pc->gres);
	else if (px_ring_conn_close(pc->conn, on_closed, pc) < 0)
		return; /* already closing: on_closed frees it */
}

/* ------------------------------------------------------------------ */
/* Public                                                               */
/* ------------------------------------------------------------------ */

static bool
addr_ok(const struct px_pool_net_opts *o)
{
	switch (o->addr.ss_family) {
	case AF_INET:
		return o->addr_len >= sizeof(struct sockaddr_in);
	case AF_INET6:
		return o->addr_len >= sizeof(struct sockaddr_in6);
	case AF_UNIX:
		return o->addr_len > offsetof(struct sockaddr_un, sun_path);
	}
	return false;
}

int
px_pool_net_manager(struct px_ring *ring, const struct px_pool_net_opts *opts,
		    struct px_pool_manager *mgr)
{
	struct net_mgr *m;

	if (!ring || !opts || !mgr || !addr_ok(opts) ||
	    opts->addr_len > sizeof(opts->addr))
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->ring = ring;
	m->o = *opts;
	if (!m->o.connect_timeout_ms)
		m->o.connect_timeout_ms = CONFIG_PX_POOL_CREATE_TIMEOUT_MS;
	memset(mgr, 0, sizeof(*mgr));
	mgr->create = net_create;
	mgr->recycle = net_recycle;
	mgr->destroy = net_destroy;
	mgr->cancel = net_cancel;
	mgr->put = net_put;
	mgr->arg = m;
	return 0;
}

void
px_pool_net_manager_free(struct px_pool_manager *mgr)
{
	if (!mgr)
		return;
	free(mgr->arg);
	mgr->arg = NULL;
}

void
px_pool_net_loopback(struct px_pool_net_opts *opts, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&opts->addr;

	memset(&opts->addr, 0, sizeof(opts->addr));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	opts->addr_len = sizeof(*sin);
}

struct px_ring_conn *
px_pool_conn_ring_conn(struct px_pool_conn *pc)
{
	return pc->conn;
}

void
px_pool_conn_set_recv(struct px_pool_conn *pc, px_pool_conn_recv_fn fn,
		      void *ctx)
{
	pc->user_fn = fn;
	pc->user_ctx = ctx;
}

bool
px_pool_conn_broken(const struct px_pool_conn *pc)
{
	return pc->broken;
}
