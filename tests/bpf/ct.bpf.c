// SPDX-License-Identifier: GPL-2.0
/* Looks up a connection and releases it, as the kernel's bpf_nf selftest does: both kfuncs live
 * in net/netfilter/nf_conntrack_bpf.c, built into nf_conntrack.ko when CONFIG_NF_CONNTRACK=m. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* complete structs, as vmlinux.h gives them: libbpf finds a forward declaration incompatible
 * with the kernel's struct (only the kind is compared, not the members) */
struct nf_conn {
	unsigned long status;
};

struct bpf_ct_opts {
	__s32 netns_id;
	__s32 error;
	__u8 l4proto;
	__u8 dir;
	__u16 ct_zone_id;
	__u8 ct_zone_dir;
	__u8 reserved[3];
};

extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb_ctx, struct bpf_sock_tuple *bpf_tuple,
					 __u32 tuple__sz, struct bpf_ct_opts *opts, __u32 opts__sz) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

SEC("tc")
int ct_lookup(struct __sk_buff *skb)
{
	struct bpf_sock_tuple tuple = {};
	struct nf_conn *ct = bpf_skb_ct_lookup(skb, &tuple, sizeof(tuple.ipv4), 0, 0);

	if (ct)
		bpf_ct_release(ct);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
