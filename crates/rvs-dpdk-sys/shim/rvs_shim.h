/* The C side of rvs-dpdk-sys: what bindgen reads (DPDK's exported API and
 * the rvs_* wrappers below) and the declarations of the wrappers for
 * DPDK's static inline functions and macros, which Rust cannot call. */
#ifndef RVS_SHIM_H
#define RVS_SHIM_H

#include <stdint.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_flow.h>

/* Where a mbuf's single segment lies. */
struct rvs_mbuf_view {
	uint8_t *buf_addr;   /* the segment's buffer */
	uint16_t buf_len;    /* its size */
	uint16_t data_off;   /* the frame's offset in it */
	uint16_t data_len;   /* the frame's length */
	uint16_t nb_segs;    /* segments in the chain (rvs handles 1) */
	uint16_t port;       /* ethdev port it came in on */
	uint8_t l4_csum_good; /* the PMD verified the L4 checksum */
};

/* What rvs shows of a started ethdev port. */
struct rvs_port_info {
	uint8_t mac[6];
	uint16_t mtu;
	uint8_t link_up;
	uint32_t speed_mbps;
	uint16_t max_rx_queues;
	uint16_t max_tx_queues;
	char driver[32];
	uint64_t rss_offloads; /* the device's flow_type_rss_offloads */
};

/* A steering rule (rvs_io::steer::flow::FlowRule): frames to addr (IPv4 in
 * its first 4 bytes unless v6), IP protocol proto (6 or 17), whose
 * destination port under mask equals dport, go to RX queue queue. */
struct rvs_flow_rule {
	uint8_t v6;
	uint8_t addr[16];
	uint8_t proto;
	uint16_t dport;
	uint16_t mask;
	uint16_t queue;
};

int rvs_errno(void);
uint16_t rvs_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **mbufs, uint16_t n);
uint16_t rvs_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **mbufs, uint16_t n);
struct rte_mbuf *rvs_pktmbuf_alloc(struct rte_mempool *pool);
void rvs_pktmbuf_free(struct rte_mbuf *m);
void rvs_mbuf_view(const struct rte_mbuf *m, struct rvs_mbuf_view *v);
void rvs_mbuf_set(struct rte_mbuf *m, uint16_t data_off, uint16_t len);
struct rte_mbuf *rvs_mbuf_from(struct rte_mempool *pool, const uint8_t *frame, uint16_t len);
unsigned rvs_ring_enqueue_burst(struct rte_ring *r, void **objs, unsigned n);
unsigned rvs_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n);
unsigned rvs_ring_count(const struct rte_ring *r);
int rvs_port_setup(uint16_t port, uint16_t queues, uint16_t rx_desc, uint16_t tx_desc,
		   struct rte_mempool *pool, int promiscuous);
int rvs_port_info(uint16_t port, struct rvs_port_info *info);
unsigned rvs_lcore_id(void);
/* rte_flow_validate / rte_flow_create of the rule (the handle is not kept:
 * rvs_flow_flush removes every rule) / rte_flow_flush: 0 or a negative
 * errno, with the PMD's message in msg (NUL-terminated, up to n bytes). */
int rvs_flow_validate(uint16_t port, const struct rvs_flow_rule *r, char *msg, size_t n);
int rvs_flow_create(uint16_t port, const struct rvs_flow_rule *r, char *msg, size_t n);
int rvs_flow_flush(uint16_t port, char *msg, size_t n);

#endif
