/*
 * pdml.h - Wireshark's PDML (tshark -T pdml) as the label tree that its
 * packet details pane shows. expat is used here only.
 */
#ifndef CAPVAULT_PDML_H
#define CAPVAULT_PDML_H

#include <jansson.h>
#include <stddef.h>

#include "errbuf.h"

/*
 * The first packet of the PDML document xml as a JSON array of nodes
 * {"label", "pos", "size", "children": [...]} (pos and size: the bytes
 * the item covers in the packet, when PDML says), one per protocol, as
 * Wireshark labels them (showname). Hidden fields, the "geninfo"
 * pseudo-protocol and packet comments ("pkt_comment": the decoder's
 * stream has only ours) are left out. Returns 0; -EINVAL (eb) for text that is
 * not PDML or holds no packet; -E2BIG (eb) for a tree nested deeper than
 * PDML_MAX_DEPTH; -ENOMEM.
 */
#define PDML_MAX_DEPTH 64
int pdml_tree(const char *xml, size_t len, json_t **tree, struct errbuf *eb);

#endif
