//! Sends one large attachment between two clients through a running atmls-ds, and measures
//! throughput and how much each side's peak RSS grows (spec/content.md CONTENT-25a to
//! CONTENT-25i): the sender encrypts chunk by chunk and uploads, the receiver downloads and
//! decrypts chunk by chunk, so neither should hold the file in memory.
//!
//! ```text
//! cargo build --release -p atmls-ds --bin atmls-ds
//! cargo build --release --features ds-client --example attachment_transfer
//! target/release/atmls-ds --database /tmp/ds.db --listen 127.0.0.1:8099 &
//! target/release/examples/attachment_transfer http://127.0.0.1:8099 100
//! ```
//!
//! The second argument is the size in MiB (default 100). Peak RSS is `VmHWM` of
//! /proc/self/status, reset between the phases through /proc/self/clear_refs (Linux).
#![forbid(unsafe_code)]

#[cfg(feature = "ds-client")]
mod run {
    use std::io::Write as _;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Instant;

    use atmls::blob::{no_progress, HttpBlobStore};
    use atmls::content::{AttachmentSource, Content};
    use atmls::directory::MemoryDirectory;
    use atmls::identity::DeviceIdentity;
    use atmls::storage::Store;
    use atmls::transport::HttpTransport;
    use atmls::Client;

    /// A `VmHWM`/`VmRSS` line of /proc/self/status, in KiB.
    fn status_kib(key: &str) -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Resets the peak to the current RSS; the current RSS.
    fn reset_peak() -> u64 {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        status_kib("VmRSS:")
    }

    async fn client(
        dir: &Arc<MemoryDirectory>,
        ds: &str,
        name: &str,
    ) -> Result<Client, Box<dyn std::error::Error>> {
        let t = Arc::new(HttpTransport::new(ds)?);
        let did = format!("did:plc:{name:a<24}").parse()?;
        Ok(Client::builder(dir.clone(), t.clone(), Store::in_memory()?)
            .identity(DeviceIdentity::new_account(did))
            .blob_store(Arc::new(HttpBlobStore::new(t)))
            // The two accounts know each other: no message request to accept first.
            .message_requests(false)
            .build()
            .await?)
    }

    /// Writes `mib` MiB of random bytes to `path`, 1 MiB at a time.
    fn random_file(path: &Path, mib: usize) -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..mib {
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut buf);
            f.write_all(&buf)?;
        }
        f.flush()
    }

    fn report(side: &str, mib: usize, start_kib: u64, secs: f64) {
        let grew = status_kib("VmHWM:").saturating_sub(start_kib) as f64 / 1024.0;
        println!(
            "{side}: {mib} MiB in {secs:.1} s = {:.1} MiB/s; peak RSS grew by {grew:.1} MiB",
            mib as f64 / secs
        );
    }

    pub async fn main(ds: &str, mib: usize) -> Result<(), Box<dyn std::error::Error>> {
        let dir = Arc::new(MemoryDirectory::new());
        let alice = client(&dir, ds, "alice").await?;
        let bob = client(&dir, ds, "bob").await?;
        let g = alice.dm(bob.did()).await?;
        bob.sync().await?;
        let tmp = tempfile::tempdir()?;
        let input = tmp.path().join("in.bin");
        random_file(&input, mib)?;

        let base = reset_peak();
        let t = Instant::now();
        let sent = alice
            .conversation(&g)
            .attach_file(&input, "in.bin", "application/octet-stream", &no_progress)
            .await?;
        report("sender", mib, base, t.elapsed().as_secs_f64());

        bob.sync().await?;
        let item = bob
            .conversation(&g)
            .message(&sent.id)
            .await?
            .ok_or("not delivered")?;
        let Some(Content::Attachment(a)) = item.decoded() else {
            return Err("not an attachment".into());
        };
        if !matches!(a.source, AttachmentSource::Streamed(_)) {
            return Err("not streamed".into());
        }
        let out = tmp.path().join("out.bin");
        let base = reset_peak();
        let t = Instant::now();
        bob.download_to(&a, &out, &no_progress).await?;
        report("receiver", mib, base, t.elapsed().as_secs_f64());
        if std::fs::metadata(&out)?.len() != (mib as u64) << 20 {
            return Err("the received file has another size".into());
        }
        Ok(())
    }
}

#[cfg(feature = "ds-client")]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let ds = args
        .next()
        .ok_or("usage: attachment_transfer DS_URL [MiB]")?;
    let mib = args.next().map(|m| m.parse()).transpose()?.unwrap_or(100);
    run::main(&ds, mib).await
}

#[cfg(not(feature = "ds-client"))]
fn main() {
    eprintln!("build with --features ds-client");
}
