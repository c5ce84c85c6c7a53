//! `IpTrie<V>`: a binary prefix trie over IPv4 and IPv6 CIDRs for longest-prefix match.
//!
//! Nodes live in one flat arena (`Vec`) and point at their children by `u32` index, so a
//! lookup is a tight loop of at most 32 (IPv4) or 128 (IPv6) array reads with no allocation
//! and no pointer chasing through boxes. Both families share the arena: node 0 is the IPv4
//! root and node 1 the IPv6 root, which is why index 0 can double as "no child".
//!
//! The trie is built once and then read concurrently (it is `Sync` when `V` is); callers that
//! need updates rebuild a new trie and swap it in with `arc-swap` (see `FeedSet`).

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Marks a node without a value, and a missing child (index 0 is a root, never a child).
const NONE: u32 = u32::MAX;
const NO_CHILD: u32 = 0;
const V4_ROOT: usize = 0;
const V6_ROOT: usize = 1;

#[derive(Clone, Copy, Debug)]
struct Node {
    children: [u32; 2],
    value: u32,
}

impl Node {
    const EMPTY: Node = Node {
        children: [NO_CHILD, NO_CHILD],
        value: NONE,
    };
}

/// A longest-prefix-match table from CIDR prefixes to values.
#[derive(Clone, Debug)]
pub struct IpTrie<V> {
    nodes: Vec<Node>,
    values: Vec<(IpNet, V)>,
}

impl<V> Default for IpTrie<V> {
    fn default() -> Self {
        Self::new()
    }
}

/// Address bits left-aligned in a `u128`, with the number of significant bits.
#[derive(Clone, Copy)]
struct Key {
    bits: u128,
    len: u8,
    root: usize,
}

impl Key {
    fn of_addr(ip: IpAddr) -> Key {
        match ip {
            IpAddr::V4(v4) => Key {
                bits: u128::from(u32::from(v4)) << 96,
                len: 32,
                root: V4_ROOT,
            },
            IpAddr::V6(v6) => Key {
                bits: u128::from(v6),
                len: 128,
                root: V6_ROOT,
            },
        }
    }

    fn of_net(net: IpNet) -> Key {
        let addr = Key::of_addr(net.network());
        Key {
            len: net.prefix_len(),
            ..addr
        }
    }

    /// The bit at `depth` (0 = most significant).
    fn bit(self, depth: u8) -> usize {
        ((self.bits >> (127 - u32::from(depth))) & 1) as usize
    }
}

impl<V> IpTrie<V> {
    /// An empty trie.
    pub fn new() -> Self {
        IpTrie {
            nodes: vec![Node::EMPTY, Node::EMPTY],
            values: Vec::new(),
        }
    }

    /// Number of distinct prefixes stored.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when no prefix is stored.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Inserts `net` (host bits are ignored: `10.1.2.3/8` means `10.0.0.0/8`).
    /// Returns the value it replaces when the same prefix was already present.
    pub fn insert(&mut self, net: IpNet, value: V) -> Option<V> {
        let net = net.trunc();
        let key = Key::of_net(net);
        let mut node = key.root;
        for depth in 0..key.len {
            let bit = key.bit(depth);
            let child = self.nodes[node].children[bit];
            node = if child == NO_CHILD {
                let index = self.push_node();
                self.nodes[node].children[bit] = index;
                index as usize
            } else {
                child as usize
            };
        }
        let slot = self.nodes[node].value;
        if slot == NONE {
            self.nodes[node].value = self.index_of_next_value();
            self.values.push((net, value));
            None
        } else {
            Some(std::mem::replace(&mut self.values[slot as usize].1, value))
        }
    }

    /// The most specific stored prefix containing `ip`, with its value. Allocation-free.
    pub fn lookup(&self, ip: IpAddr) -> Option<(IpNet, &V)> {
        self.matches(ip).last()
    }

    /// True when some stored prefix contains `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.lookup(ip).is_some()
    }

    /// The value stored for exactly `net`, if any.
    pub fn get_exact(&self, net: IpNet) -> Option<&V> {
        let net = net.trunc();
        let key = Key::of_net(net);
        let mut node = key.root;
        for depth in 0..key.len {
            let child = self.nodes[node].children[key.bit(depth)];
            if child == NO_CHILD {
                return None;
            }
            node = child as usize;
        }
        let slot = self.nodes[node].value;
        (slot != NONE).then(|| &self.values[slot as usize].1)
    }

    /// Every stored prefix containing `ip`, from the shortest to the longest. Allocation-free.
    pub fn matches(&self, ip: IpAddr) -> Matches<'_, V> {
        let key = Key::of_addr(ip);
        Matches {
            trie: self,
            key,
            node: key.root as u32,
            depth: 0,
        }
    }

    /// All stored prefixes and values, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &V)> {
        self.values.iter().map(|(net, value)| (*net, value))
    }

    fn push_node(&mut self) -> u32 {
        let index = u32::try_from(self.nodes.len()).expect("IpTrie node arena exceeds u32");
        self.nodes.push(Node::EMPTY);
        index
    }

    fn index_of_next_value(&self) -> u32 {
        u32::try_from(self.values.len()).expect("IpTrie value count exceeds u32")
    }
}

impl<V> FromIterator<(IpNet, V)> for IpTrie<V> {
    fn from_iter<I: IntoIterator<Item = (IpNet, V)>>(iter: I) -> Self {
        let mut trie = IpTrie::new();
        for (net, value) in iter {
            trie.insert(net, value);
        }
        trie
    }
}

/// Iterator over the prefixes containing an address, shortest first (see [`IpTrie::matches`]).
pub struct Matches<'a, V> {
    trie: &'a IpTrie<V>,
    key: Key,
    /// Next node to inspect, `NONE` once the walk fell off the trie.
    node: u32,
    depth: u8,
}

impl<'a, V> Iterator for Matches<'a, V> {
    type Item = (IpNet, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        let nodes = &self.trie.nodes;
        while self.node != NONE {
            let node = &nodes[self.node as usize];
            self.node = if self.depth < self.key.len {
                let child = node.children[self.key.bit(self.depth)];
                self.depth += 1;
                if child == NO_CHILD {
                    NONE
                } else {
                    child
                }
            } else {
                NONE
            };
            if node.value != NONE {
                let (net, value) = &self.trie.values[node.value as usize];
                return Some((*net, value));
            }
        }
        None
    }
}

/// Parses `1.2.3.4`, `1.2.3.0/24`, `2001:db8::/32` or `2001:db8::1` into a network; a bare
/// address becomes a host route (/32 or /128).
pub fn parse_net(text: &str) -> Result<IpNet, ipnet::AddrParseError> {
    if text.contains('/') {
        return text.parse::<IpNet>();
    }
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => Ok(IpNet::V4(Ipv4Net::from(v4))),
        Ok(IpAddr::V6(v6)) => Ok(IpNet::V6(Ipv6Net::from(v6))),
        // Re-parse as a network so the caller gets ipnet's own error type.
        Err(_) => text.parse::<IpNet>(),
    }
}

/// The host route (/32 or /128) of an address.
pub fn host_net(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        parse_net(s).unwrap()
    }

    #[test]
    fn longest_prefix_wins_and_families_are_separate() {
        let mut trie = IpTrie::new();
        trie.insert(net("10.0.0.0/8"), "eight");
        trie.insert(net("10.1.0.0/16"), "sixteen");
        trie.insert(net("::/0"), "v6 default");
        assert_eq!(
            trie.lookup("10.1.2.3".parse().unwrap()).unwrap().1,
            &"sixteen"
        );
        assert_eq!(
            trie.lookup("10.2.2.3".parse().unwrap()).unwrap().1,
            &"eight"
        );
        assert!(trie.lookup("11.0.0.1".parse().unwrap()).is_none());
        assert_eq!(
            trie.lookup("2001:db8::1".parse().unwrap()).unwrap().1,
            &"v6 default"
        );
        let all: Vec<_> = trie
            .matches("10.1.0.1".parse().unwrap())
            .map(|m| *m.1)
            .collect();
        assert_eq!(all, vec!["eight", "sixteen"]);
    }

    #[test]
    fn insert_replaces_and_truncates_host_bits() {
        let mut trie = IpTrie::new();
        assert_eq!(trie.insert(net("192.168.1.77/24"), 1), None);
        assert_eq!(trie.insert(net("192.168.1.0/24"), 2), Some(1));
        assert_eq!(trie.len(), 1);
        assert_eq!(trie.get_exact(net("192.168.1.0/24")), Some(&2));
        assert_eq!(
            trie.lookup("192.168.1.200".parse().unwrap()).unwrap().0,
            net("192.168.1.0/24")
        );
    }

    #[test]
    fn zero_length_prefix_matches_everything_in_its_family() {
        let trie: IpTrie<u8> = [(net("0.0.0.0/0"), 7)].into_iter().collect();
        assert_eq!(
            trie.lookup("8.8.8.8".parse().unwrap()).map(|m| *m.1),
            Some(7)
        );
        assert!(trie.lookup("::1".parse().unwrap()).is_none());
    }

    #[test]
    fn bare_addresses_parse_as_host_routes() {
        assert_eq!(net("1.2.3.4").prefix_len(), 32);
        assert_eq!(net("2001:db8::1").prefix_len(), 128);
        assert!(parse_net("1.2.3.4/33").is_err());
        assert!(parse_net("nonsense").is_err());
    }
}
