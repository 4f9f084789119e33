//! The MD5-based crypt of FreeBSD (`$1$`) and Apache (`$apr1$`): the same algorithm with a
//! different magic string.

use md5::{Digest as _, Md5};

/// Which variant a hash is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Magic {
    /// `$apr1$`, written by Apache's `htpasswd -m` (its default).
    Apache,
    /// `$1$`, glibc's MD5-crypt.
    Bsd,
}

impl Magic {
    fn text(self) -> &'static str {
        match self {
            Self::Apache => "$apr1$",
            Self::Bsd => "$1$",
        }
    }

    /// The variant of `hash` and the text after its magic.
    pub(crate) fn split(hash: &str) -> Option<(Self, &str)> {
        [Self::Apache, Self::Bsd]
            .into_iter()
            .find_map(|magic| hash.strip_prefix(magic.text()).map(|rest| (magic, rest)))
    }
}

const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 22-character hash of `password` with `salt` (at most 8 bytes are used).
pub(crate) fn hash(password: &[u8], salt: &[u8], magic: Magic) -> String {
    let salt = &salt[..salt.len().min(8)];
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut context = Md5::new()
        .chain_update(password)
        .chain_update(magic.text())
        .chain_update(salt);
    for chunk in password.chunks(16) {
        context.update(&alternate[..chunk.len()]);
    }
    let mut bits = password.len();
    while bits != 0 {
        if bits & 1 == 1 {
            context.update([0u8]);
        } else {
            context.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut digest = context.finalize();
    for round in 0..1000 {
        let mut context = Md5::new();
        if round & 1 == 1 {
            context.update(password);
        } else {
            context.update(digest);
        }
        if round % 3 != 0 {
            context.update(salt);
        }
        if round % 7 != 0 {
            context.update(password);
        }
        if round & 1 == 1 {
            context.update(digest);
        } else {
            context.update(password);
        }
        digest = context.finalize();
    }
    let d = digest;
    let groups = [
        (d[0], d[6], d[12]),
        (d[1], d[7], d[13]),
        (d[2], d[8], d[14]),
        (d[3], d[9], d[15]),
        (d[4], d[10], d[5]),
    ];
    let mut out = String::with_capacity(22);
    for (a, b, c) in groups {
        encode(
            &mut out,
            (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c),
            4,
        );
    }
    encode(&mut out, u32::from(d[11]), 2);
    out
}

fn encode(out: &mut String, mut value: u32, count: usize) {
    for _ in 0..count {
        out.push(char::from(ITOA64[(value & 0x3f) as usize]));
        value >>= 6;
    }
}
