//! The MD5 digests SQS returns, computed as AWS documents them.

use std::collections::BTreeMap;

use md5::{Digest, Md5};

use crate::protocol::MessageAttributeValue;

/// MD5 of a message body (`MD5OfMessageBody`).
pub(crate) fn body_md5(body: &str) -> [u8; 16] {
    Md5::digest(body.as_bytes()).into()
}

/// The deduplication id content-based deduplication gives a FIFO message: the lower-case hex
/// SHA-256 of its body, as SQS computes it.
pub(crate) fn sha256_hex(body: &str) -> String {
    hex(&sha2::Sha256::digest(body.as_bytes()))
}

/// Lower-case hex of a digest.
pub(crate) fn hex(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * digest.len());
    for b in digest {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// A keyed digest of `parts` under `secret` (secret, parts, secret), for values that must not
/// be forged by someone who does not know the secret.
pub(crate) fn keyed(secret: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(secret);
    for part in parts {
        h.update(part);
    }
    h.update(secret);
    h.finalize().into()
}

fn put_prefixed(h: &mut Md5, bytes: &[u8]) {
    // Attribute parts are bounded far below 4 GiB by the message size limit.
    h.update((bytes.len() as u32).to_be_bytes());
    h.update(bytes);
}

/// `MD5OfMessageAttributes`: for each attribute in name order, the name and the data type
/// (each length-prefixed, 4 bytes big endian), a transport byte (1 string, 2 binary) and the
/// length-prefixed value. `None` when there are no attributes.
pub(crate) fn attributes_md5(attrs: &BTreeMap<String, MessageAttributeValue>) -> Option<String> {
    if attrs.is_empty() {
        return None;
    }
    let mut h = Md5::new();
    for (name, value) in attrs {
        put_prefixed(&mut h, name.as_bytes());
        put_prefixed(&mut h, value.data_type.as_bytes());
        if let Some(s) = &value.string_value {
            h.update([1u8]);
            put_prefixed(&mut h, s.as_bytes());
        } else if let Some(b) = &value.binary_value {
            h.update([2u8]);
            put_prefixed(&mut h, b);
        }
    }
    Some(hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_digest_is_plain_md5() {
        assert_eq!(hex(&body_md5("")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(&body_md5("hello")), "5d41402abc4b2a76b9719d911017c592");
    }

    #[test]
    fn content_deduplication_id_is_sha256_hex() {
        assert_eq!(
            sha256_hex("hello"),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }

    #[test]
    fn no_attributes_no_digest() {
        assert_eq!(attributes_md5(&BTreeMap::new()), None);
    }
}
