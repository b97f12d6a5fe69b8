/*
 * objstore_priv.h - what a backend of objstore.h provides: a table of
 * operations, and its state after the common header.
 */
#ifndef CAPVAULT_OBJSTORE_PRIV_H
#define CAPVAULT_OBJSTORE_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "objstore.h"

struct objstore_ops {
	void (*destroy)(struct objstore *os);
	int (*put)(struct objstore *os, const uint8_t sha[32], int fd, uint64_t size,
		   struct errbuf *eb);
	/* Optional: put handing states out (objstore_put_chained). */
	int (*put_chained)(struct objstore *os, const uint8_t sha[32], int fd, uint64_t size,
			   struct objstore_states *states, struct errbuf *eb);
	bool (*put_chains)(struct objstore *os, uint64_t size);
	int (*stat)(struct objstore *os, const uint8_t sha[32], uint64_t *size, struct errbuf *eb);
	int (*verify)(struct objstore *os, const uint8_t sha[32], struct errbuf *eb);
	int (*remove)(struct objstore *os, const uint8_t sha[32], struct errbuf *eb);
	int (*list)(struct objstore *os, objstore_list_fn fn, void *opaque, struct errbuf *eb);
	int (*read_ranges)(struct objstore *os, const uint8_t sha[32], struct objstore_range *r,
			   size_t n, struct errbuf *eb);
	int (*read_stream)(struct objstore *os, const uint8_t sha[32], uint64_t offset,
			   uint64_t len, objstore_data_fn fn, void *opaque, struct errbuf *eb);
	/* The owner key's value: into buf (0), -ENOENT when there is none,
	 * or an error; and writing value as it is, len bytes, only when the
	 * key is absent: -EEXIST (or 0, where the store cannot tell) when
	 * another write got there first, which the read back then shows. */
	int (*owner_get)(struct objstore *os, char *buf, size_t len, struct errbuf *eb);
	int (*owner_put)(struct objstore *os, const char *value, size_t len, struct errbuf *eb);
	/* objstore_check's request; its outcome reaches objstore_note. */
	int (*check)(struct objstore *os, struct errbuf *eb);
};

/* The first member of every backend's state. */
struct objstore {
	const struct objstore_ops *ops;
	char description[256];
	char owner[OBJSTORE_OWNER_MAX]; /* "" until objstore_set_owner */
	atomic_bool claimed;            /* the owner key names owner */
	/* Objects the owner's catalog says are in this store (its first
	 * few): with no owner key there, the claim asks for them. */
	uint8_t witness[OBJSTORE_WITNESSES][32];
	unsigned nwitness;
	struct objstore_watch {
		pthread_mutex_t lock;
		enum objstore_state state;   /* of the latest exchange */
		char error[sizeof(((struct errbuf *)0)->msg)];
		char cred_error[sizeof(((struct errbuf *)0)->msg)]; /* credentials file refused */
		enum objstore_state shown;   /* as objstore_health says it */
		int64_t since_ns, checked_ns;
		objstore_health_fn fn;
		void *opaque;
	} watch;
};

/* Before any other use of base / after its last (the backends' new and
 * destroy). */
void objstore_base_init(struct objstore *os, const struct objstore_ops *ops);
void objstore_base_fini(struct objstore *os);
/* A backend's report of one exchange with the store: its outcome and,
 * unless ok, why (never a credential). */
void objstore_note(struct objstore *os, enum objstore_state s, const char *error);
/* Why the credentials file as it is now was not taken, "" once it is:
 * the state is "refused" meanwhile, even while older keys still work. */
void objstore_note_credentials(struct objstore *os, const char *why);

#endif
