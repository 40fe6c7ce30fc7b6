//! Reading the files a service or a command reads (directories, key-center masters, key
//! files, inputs), each with a size limit and an error that names the file; creating private
//! directories.

use std::fs::File;
use std::io::{Error, ErrorKind, Read};
use std::path::Path;

/// The largest input file read (forms, orders, sealed orders, policies, directories,
/// profiles, personal keys): 16 MiB.
pub const MAX_INPUT: u64 = 16 << 20;
/// The largest key file read: a Blom master at the largest k (about 1.07 GB) and a little.
pub const MAX_KEY_FILE: u64 = {
    let k = warifu_core::blom::MAX_K as u64;
    (k + 1) * (k + 2) * 16 + (1 << 20)
};

/// The error of an input larger than `limit` bytes.
pub fn too_large(what: &str, limit: u64) -> Error {
    Error::new(
        ErrorKind::InvalidData,
        format!("{what} is larger than the {} KiB allowed", limit / 1024),
    )
}

/// Reads a whole regular file of at most `limit` bytes, naming it in every error: a device,
/// a pipe or a larger file is refused before it is read (`/dev/zero` cannot fill memory).
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let name = path.display();
    let fail = |e: Error| Error::new(e.kind(), format!("cannot read {name}: {e}"));
    let file = File::open(path).map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{name} is not a regular file"),
        ));
    }
    if meta.len() > limit {
        return Err(too_large(&name.to_string(), limit));
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut buf).map_err(fail)?;
    if buf.len() as u64 > limit {
        return Err(too_large(&name.to_string(), limit));
    }
    Ok(buf)
}

pub use warifu_store::create_private_dir;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_large_files_and_devices_before_reading() {
        let dir = tempfile::tempdir().expect("tmp");
        let big = dir.path().join("big.json");
        // Sparse: 100 MB long, nothing written.
        File::create(&big)
            .and_then(|f| f.set_len(100 << 20))
            .expect("sparse file");
        let e = read_bounded(&big, MAX_INPUT).expect_err("too large");
        assert!(e.to_string().contains("larger than the 16384 KiB"), "{e}");
        assert!(e.to_string().contains("big.json"), "{e}");
        // The readers: a directory file (`serve --directory`, `up`) and a key-center master.
        let e = crate::directory::Directory::load(&big).expect_err("directory");
        assert!(e.to_string().contains("larger than"), "{e}");
        let kc = dir.path().join(crate::dev::local::KEYCENTER_DIR);
        create_private_dir(&kc).expect("keycenter");
        File::create(kc.join(crate::dev::local::MASTER_FILE))
            .and_then(|f| f.set_len(MAX_KEY_FILE + 1))
            .expect("sparse master");
        let opts = crate::dev::local::LocalOptions::new(dir.path(), 4);
        let e = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(crate::dev::local::Local::start(opts))
            .expect_err("master too large");
        assert!(e.to_string().contains("larger than"), "{e}");
        #[cfg(unix)]
        {
            let e = read_bounded(Path::new("/dev/zero"), MAX_INPUT).expect_err("device");
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
        let e = read_bounded(&dir.path().join("missing"), MAX_INPUT).expect_err("missing");
        assert!(e.to_string().contains("cannot read"), "{e}");
        std::fs::write(&big, b"{}").expect("small");
        assert_eq!(read_bounded(&big, MAX_INPUT).expect("read"), b"{}");
    }
}
