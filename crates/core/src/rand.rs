//! Sources of randomness: the operating system's CSPRNG, and a seeded stream for test vectors.

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Where random bytes come from. Production code uses [`OsRandom`]; known-answer vectors use
/// [`SeededRandom`] so that a seal can be reproduced byte for byte.
pub trait Randomness {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]) -> Result<()>;
}

/// The operating system's CSPRNG (`getrandom`).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Randomness for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        getrandom::fill(buf).map_err(|_| Error::Rng)
    }
}

/// A deterministic stream for test vectors only: block `i` is
/// `SHA-256("warifu/v1/test-rng" ‖ seed ‖ u64be(i))`. Never use it for real keys.
#[derive(Debug, Clone)]
pub struct SeededRandom {
    seed: Vec<u8>,
    counter: u64,
    block: [u8; 32],
    used: usize,
}

/// The label of the test-vector random stream.
pub const TEST_RNG_LABEL: &[u8] = b"warifu/v1/test-rng";

impl SeededRandom {
    /// A stream for `seed`.
    pub fn new(seed: &[u8]) -> SeededRandom {
        SeededRandom {
            seed: seed.to_vec(),
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }
}

impl Randomness for SeededRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        for b in buf {
            if self.used == 32 {
                let mut h = Sha256::new();
                h.update(TEST_RNG_LABEL);
                h.update(&self.seed);
                h.update(self.counter.to_be_bytes());
                self.block = h.finalize().into();
                self.counter += 1;
                self.used = 0;
            }
            *b = self.block[self.used];
            self.used += 1;
        }
        Ok(())
    }
}
