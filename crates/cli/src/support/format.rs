//! Text for the shell: writing to standard output without panicking, and figures in words.
/// Writes text to standard output, returning an error instead of panicking when it fails.
pub(crate) fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| anyhow::Error::new(e).context("cannot write to standard output"))
}

/// The collusion bound in plain words.
pub fn bound_words(k: u32) -> String {
    format!(
        "any {} key holders together can recover the master and every pairwise key; \
         {k} or fewer learn nothing about other pairs' keys",
        u64::from(k) + 1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_names_k_and_k_plus_one() {
        let b = bound_words(16);
        assert!(b.contains("any 17 key holders"), "{b}");
        assert!(b.contains("16 or fewer"), "{b}");
    }
}
