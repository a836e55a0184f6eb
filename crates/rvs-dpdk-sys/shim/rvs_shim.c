/* Exported wrappers for DPDK's static inline burst, mbuf and ring
 * functions and its per-lcore errno, plus port setup kept in C so that
 * Rust never depends on the layout of rte_eth_conf or rte_eth_dev_info. */
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include "rvs_shim.h"

int rvs_errno(void) { return rte_errno; }

uint16_t rvs_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **mbufs, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, mbufs, n);
}

uint16_t rvs_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **mbufs, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, mbufs, n);
}

struct rte_mbuf *rvs_pktmbuf_alloc(struct rte_mempool *pool) { return rte_pktmbuf_alloc(pool); }

void rvs_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }

void rvs_mbuf_view(const struct rte_mbuf *m, struct rvs_mbuf_view *v)
{
	v->buf_addr = m->buf_addr;
	v->buf_len = m->buf_len;
	v->data_off = m->data_off;
	v->data_len = m->data_len;
	v->nb_segs = m->nb_segs;
	v->port = m->port;
	v->l4_csum_good = (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD;
}

void rvs_mbuf_set(struct rte_mbuf *m, uint16_t data_off, uint16_t len)
{
	m->data_off = data_off;
	m->data_len = len;
	m->pkt_len = len;
}

struct rte_mbuf *rvs_mbuf_from(struct rte_mempool *pool, const uint8_t *frame, uint16_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	if (m == NULL)
		return NULL;
	char *d = rte_pktmbuf_append(m, len);
	if (d == NULL) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	memcpy(d, frame, len);
	return m;
}

unsigned rvs_ring_enqueue_burst(struct rte_ring *r, void **objs, unsigned n)
{
	return rte_ring_enqueue_burst(r, objs, n, NULL);
}

unsigned rvs_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n)
{
	return rte_ring_dequeue_burst(r, objs, n, NULL);
}

unsigned rvs_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }

int rvs_port_setup(uint16_t port, uint16_t queues, uint16_t rx_desc, uint16_t tx_desc,
		   struct rte_mempool *pool, int promiscuous)
{
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	int socket = rte_eth_dev_socket_id(port);
	int rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0)
		return rc;
	if (queues > info.max_rx_queues || queues > info.max_tx_queues)
		return -EINVAL;
	memset(&conf, 0, sizeof(conf));
	if (info.flow_type_rss_offloads != 0 && queues > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
			info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
	}
	rc = rte_eth_dev_configure(port, queues, queues, &conf);
	if (rc != 0)
		return rc;
	if (socket < 0)
		socket = 0;
	for (uint16_t q = 0; q < queues; q++) {
		rc = rte_eth_rx_queue_setup(port, q, rx_desc, socket, NULL, pool);
		if (rc != 0)
			return rc;
		rc = rte_eth_tx_queue_setup(port, q, tx_desc, socket, NULL);
		if (rc != 0)
			return rc;
	}
	rc = rte_eth_dev_start(port);
	if (rc != 0)
		return rc;
	if (!promiscuous)
		return 0;
	rc = rte_eth_promiscuous_enable(port);
	return rc == -ENOTSUP ? 0 : rc;
}

int rvs_port_info(uint16_t port, struct rvs_port_info *out)
{
	struct rte_eth_dev_info info;
	struct rte_eth_link link;
	struct rte_ether_addr mac;
	int rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0)
		return rc;
	memset(out, 0, sizeof(*out));
	if (rte_eth_macaddr_get(port, &mac) == 0)
		memcpy(out->mac, mac.addr_bytes, 6);
	rte_eth_dev_get_mtu(port, &out->mtu);
	if (rte_eth_link_get_nowait(port, &link) == 0) {
		out->link_up = link.link_status == RTE_ETH_LINK_UP;
		out->speed_mbps = link.link_speed;
	}
	out->max_rx_queues = info.max_rx_queues;
	out->max_tx_queues = info.max_tx_queues;
	if (info.driver_name != NULL)
		strncpy(out->driver, info.driver_name, sizeof(out->driver) - 1);
	out->rss_offloads = info.flow_type_rss_offloads;
	return 0;
}

unsigned rvs_lcore_id(void) { return rte_lcore_id(); }

/* The pattern and actions of a rule, in storage the caller provides. */
struct rvs_flow_parts {
	struct rte_flow_attr attr;
	struct rte_flow_item items[4];
	struct rte_flow_item_ipv4 ip4, ip4_mask;
	struct rte_flow_item_ipv6 ip6, ip6_mask;
	struct rte_flow_item_tcp tcp, tcp_mask;
	struct rte_flow_item_udp udp, udp_mask;
	struct rte_flow_action_queue queue;
	struct rte_flow_action actions[2];
};

static void rvs_flow_build(const struct rvs_flow_rule *r, struct rvs_flow_parts *p)
{
	memset(p, 0, sizeof(*p));
	p->attr.ingress = 1;
	p->items[0].type = RTE_FLOW_ITEM_TYPE_ETH;
	if (r->v6) {
		memcpy(p->ip6.hdr.dst_addr, r->addr, 16);
		memset(p->ip6_mask.hdr.dst_addr, 0xff, 16);
		p->ip6_mask.hdr.proto = 0xff;
		p->ip6.hdr.proto = r->proto;
		p->items[1].type = RTE_FLOW_ITEM_TYPE_IPV6;
		p->items[1].spec = &p->ip6;
		p->items[1].mask = &p->ip6_mask;
	} else {
		memcpy(&p->ip4.hdr.dst_addr, r->addr, 4);
		p->ip4_mask.hdr.dst_addr = 0xffffffff;
		p->ip4.hdr.next_proto_id = r->proto;
		p->ip4_mask.hdr.next_proto_id = 0xff;
		p->items[1].type = RTE_FLOW_ITEM_TYPE_IPV4;
		p->items[1].spec = &p->ip4;
		p->items[1].mask = &p->ip4_mask;
	}
	if (r->proto == IPPROTO_TCP) {
		p->tcp.hdr.dst_port = rte_cpu_to_be_16(r->dport);
		p->tcp_mask.hdr.dst_port = rte_cpu_to_be_16(r->mask);
		p->items[2].type = RTE_FLOW_ITEM_TYPE_TCP;
		p->items[2].spec = &p->tcp;
		p->items[2].mask = &p->tcp_mask;
	} else {
		p->udp.hdr.dst_port = rte_cpu_to_be_16(r->dport);
		p->udp_mask.hdr.dst_port = rte_cpu_to_be_16(r->mask);
		p->items[2].type = RTE_FLOW_ITEM_TYPE_UDP;
		p->items[2].spec = &p->udp;
		p->items[2].mask = &p->udp_mask;
	}
	p->items[3].type = RTE_FLOW_ITEM_TYPE_END;
	p->queue.index = r->queue;
	p->actions[0].type = RTE_FLOW_ACTION_TYPE_QUEUE;
	p->actions[0].conf = &p->queue;
	p->actions[1].type = RTE_FLOW_ACTION_TYPE_END;
}

static int rvs_flow_msg(int rc, const struct rte_flow_error *e, char *msg, size_t n)
{
	if (n == 0)
		return rc;
	if (rc == 0) {
		msg[0] = 0;
		return 0;
	}
	int err = rc < 0 ? -rc : rte_errno;
	const char *s = strerror(err);
	if (e->message == NULL || strcmp(e->message, s) == 0)
		snprintf(msg, n, "%s", s);
	else
		snprintf(msg, n, "%s (%s)", e->message, s);
	return -err;
}

int rvs_flow_validate(uint16_t port, const struct rvs_flow_rule *r, char *msg, size_t n)
{
	struct rvs_flow_parts p;
	struct rte_flow_error e;
	memset(&e, 0, sizeof(e));
	rvs_flow_build(r, &p);
	return rvs_flow_msg(rte_flow_validate(port, &p.attr, p.items, p.actions, &e), &e, msg, n);
}

int rvs_flow_create(uint16_t port, const struct rvs_flow_rule *r, char *msg, size_t n)
{
	struct rvs_flow_parts p;
	struct rte_flow_error e;
	memset(&e, 0, sizeof(e));
	rvs_flow_build(r, &p);
	struct rte_flow *f = rte_flow_create(port, &p.attr, p.items, p.actions, &e);
	return rvs_flow_msg(f == NULL ? -(rte_errno ? rte_errno : EINVAL) : 0, &e, msg, n);
}

int rvs_flow_flush(uint16_t port, char *msg, size_t n)
{
	struct rte_flow_error e;
	memset(&e, 0, sizeof(e));
	return rvs_flow_msg(rte_flow_flush(port, &e), &e, msg, n);
}
