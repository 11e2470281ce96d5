//! Requests from both sides: submit (on-chain or signed off-chain), status, wait, lock,
//! fulfil, slash, refund and cancel.

use super::chain::ChainArgs;
use alloy::primitives::{B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::sol_types::{SolEvent, SolValue};
use anyhow::{Context as _, Result, bail, ensure};
use clap::Args;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tiffin_market::amount::{collateral, native, show_collateral, show_native};
use tiffin_market::bindings::AttestationVerifier;
use tiffin_market::bindings::ProofMarket::{
    ProofDelivered, RequestCancelled, RequestFulfilled, RequestRefunded, RequestSubmitted,
};
use tiffin_market::claim::{claim_digest, journal_digest};
use tiffin_market::merkle::root_from_proof;
use tiffin_market::request::request_id;
use tiffin_market::{Input, MarketClient, Offer, Predicate, ProofRequest, RequestStatus};

#[derive(Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    guest: crate::samples::GuestArgs,
    /// The program's image id, when it is only reachable at --image-url.
    #[arg(long, requires = "image_url")]
    image_id: Option<B256>,
    /// Where provers fetch the program (default: file:// of the program path, or
    /// tiffin-sample://NAME for a bundled sample).
    #[arg(long)]
    image_url: Option<String>,
    /// Provers fetch the input from this URL instead of the request carrying it.
    #[arg(long, conflicts_with_all = ["input", "input_hex"])]
    input_url: Option<String>,
    /// The journal must be exactly these bytes (hex). Default: the journal of a local run of
    /// the program on the input (so a prover is paid only for the computation you asked for).
    #[arg(long)]
    journal_hex: Option<String>,
    /// The journal must start with these bytes (hex).
    #[arg(long, conflicts_with = "journal_hex")]
    journal_prefix_hex: Option<String>,
    /// Accept any journal: a prover may then be paid for running the program on any input (or
    /// replaying any earlier seal of it), unless the program commits a digest of its input.
    #[arg(long, conflicts_with_all = ["journal_hex", "journal_prefix_hex"])]
    journal_any: bool,
    /// The price when bidding starts (e.g. `0.001ether`).
    #[arg(long, default_value = "0")]
    min_price: String,
    /// The price the ramp reaches; escrowed by an on-chain submission.
    #[arg(long)]
    max_price: String,
    /// Seconds from the latest block until bidding starts.
    #[arg(long, default_value_t = 0)]
    bidding_delay: u64,
    /// Seconds for the price to ramp from min to max (default: from the local run's cycles,
    /// see docs/market.md).
    #[arg(long)]
    ramp_up: Option<u32>,
    /// Seconds from bidding start until locking closes (and the locker must have fulfilled)
    /// (default: from the local run's cycles).
    #[arg(long)]
    lock_timeout: Option<u32>,
    /// Seconds from bidding start until the request expires (default: from the local run).
    #[arg(long)]
    timeout: Option<u32>,
    /// Collateral a prover escrows to lock (tokens, e.g. `10`).
    #[arg(long, default_value = "1")]
    lock_collateral: String,
    /// The request's index among yours (default: the first unused from the current time).
    #[arg(long)]
    index: Option<u32>,
    /// Sign the request and write it to this file instead of submitting it on-chain; a prover
    /// locks it with `tiffin market lock --request FILE`.
    #[arg(long)]
    offchain: Option<PathBuf>,
    /// Native currency sent with the submission and deposited first (e.g. to cover maxPrice).
    #[arg(long)]
    value: Option<String>,
}

pub async fn submit(chain: &ChainArgs, args: SubmitArgs) -> Result<()> {
    let client = chain.client().await?;
    let (image_id, image_url) = image(&args)?;
    let input = match &args.input_url {
        Some(url) => Input::url(url),
        None => Input::inline(args.guest.input()?),
    };
    let local = local_run(&args)?;
    let predicate = match (&args.journal_hex, &args.journal_prefix_hex, &local) {
        (Some(h), _, _) => Predicate::journal_equals(&from_hex(h, "--journal-hex")?),
        (None, Some(h), _) => Predicate::prefix_match(from_hex(h, "--journal-prefix-hex")?),
        _ if args.journal_any => Predicate::any(),
        (None, None, Some(run)) => Predicate::journal_equals(&run.journal),
        (None, None, None) => bail!(
            "no journal to require: the program or the input is not local, so give \
             --journal-hex, --journal-prefix-hex or --journal-any"
        ),
    };
    let timing = OfferTiming::for_cycles(local.as_ref().map(|r| r.total_cycles));
    let offer = Offer {
        minPrice: native(&args.min_price)?,
        maxPrice: native(&args.max_price)?,
        biddingStart: latest_timestamp(&client).await? + args.bidding_delay,
        rampUpPeriod: args.ramp_up.unwrap_or(timing.ramp_up),
        lockTimeout: args.lock_timeout.unwrap_or(timing.lock_timeout),
        timeout: args.timeout.unwrap_or(timing.timeout),
        lockCollateral: collateral(&args.lock_collateral)?,
    };
    let index = match args.index {
        Some(index) => index,
        None => free_index(&client).await?,
    };
    let id = request_id(client.address(), index);
    let request = ProofRequest::new(id, image_id, predicate, &image_url, input, offer.clone());
    println!("request id: {id:#x}");
    println!("image id: {image_id}");
    println!("price: {} .. {}", show_native(offer.minPrice), show_native(offer.maxPrice));
    println!("lock deadline: {}", offer.lock_deadline());
    println!("deadline: {}", offer.deadline());
    match &args.offchain {
        Some(path) => {
            let signature = client.sign_request(&request)?;
            let file = json!({
                "request": format!("0x{}", hex::encode(request.abi_encode())),
                "signature": format!("0x{}", hex::encode(&signature)),
            });
            std::fs::write(path, serde_json::to_vec_pretty(&file)?)
                .with_context(|| format!("writing {path:?}"))?;
            println!("signed request: {}", path.display());
        }
        None => {
            let value = args.value.as_deref().map(native).transpose()?.unwrap_or_default();
            client.submit_request(&request, value).await?;
            println!("submitted: on-chain");
        }
    }
    Ok(())
}

/// What a local run of the request's program on its input gave, when both are local.
fn local_run(args: &SubmitArgs) -> Result<Option<tiffin_zkvm::Execution>> {
    let explicit = args.journal_hex.is_some() || args.journal_prefix_hex.is_some();
    if args.image_id.is_some() || args.input_url.is_some() || (explicit && args.timing_given()) {
        return Ok(None);
    }
    let (program, _) = args.guest.program()?;
    let input = args.guest.input()?;
    let opts = tiffin_zkvm::ExecuteOptions::default();
    let run = tiffin_zkvm::execute(&program, input.as_slice(), &opts, |_| Ok::<_, String>(()))
        .context("running the program locally (to compute the journal and size the offer)")?;
    println!("local run: {} cycles, journal {} bytes", run.total_cycles, run.journal.len());
    Ok(Some(run))
}

impl SubmitArgs {
    fn timing_given(&self) -> bool {
        self.ramp_up.is_some() && self.lock_timeout.is_some() && self.timeout.is_some()
    }
}

/// The offer's default times, from the cycles of a local run (docs/market.md states the
/// formula): enough for a broker proving at [`OfferTiming::PLANNED_KHZ`] to lock, prove,
/// aggregate and submit with its deadline buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferTiming {
    pub ramp_up: u32,
    pub lock_timeout: u32,
    pub timeout: u32,
}

impl OfferTiming {
    /// The proving speed the defaults plan for, in kHz (a small CPU cluster).
    pub const PLANNED_KHZ: u64 = 10;
    /// Seconds on top of proving: the broker's preflight, lock, aggregation, submission and
    /// deadline buffer (its defaults: 165 s buffer plus a 45 s transaction timeout).
    pub const OVERHEAD_SECS: u64 = 300;

    /// `lock_timeout = 300 + cycles / 10,000` (s), `timeout = 2 × lock_timeout`, `ramp_up =
    /// lock_timeout / 5`; without a local run the fixed 600 / 1200 / 60.
    pub fn for_cycles(cycles: Option<u64>) -> Self {
        let Some(cycles) = cycles else {
            return Self { ramp_up: 60, lock_timeout: 600, timeout: 1200 };
        };
        let proving = cycles.div_ceil(Self::PLANNED_KHZ * 1_000);
        let lock = Self::OVERHEAD_SECS.saturating_add(proving).min(u64::from(u32::MAX / 2)) as u32;
        Self { ramp_up: lock / 5, lock_timeout: lock, timeout: lock * 2 }
    }
}

/// The image id and URL of the request's program.
fn image(args: &SubmitArgs) -> Result<(B256, String)> {
    if let Some(id) = args.image_id {
        let url = args.image_url.clone().context("--image-id needs --image-url")?;
        return Ok((id, url));
    }
    let (program, _) = args.guest.program()?;
    let id = tiffin_zkvm::ImageId::of_program(&program)?;
    let url = match &args.image_url {
        Some(url) => url.clone(),
        None => args.guest.program_url()?,
    };
    Ok((B256::from_slice(id.0.as_bytes()), url))
}

fn from_hex(text: &str, flag: &str) -> Result<Vec<u8>> {
    hex::decode(text.trim().trim_start_matches("0x")).with_context(|| format!("{flag} is not hex"))
}

async fn latest_timestamp(client: &MarketClient) -> Result<u64> {
    let block = client
        .provider()
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .context("the chain has no latest block")?;
    Ok(block.header.timestamp)
}

/// The first index from the current time whose request id is unused.
async fn free_index(client: &MarketClient) -> Result<u32> {
    let start =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as u32;
    for index in start..start.saturating_add(64) {
        if client.status(request_id(client.address(), index)).await? == RequestStatus::Unknown {
            return Ok(index);
        }
    }
    bail!("no unused request index near {start}; pass --index")
}

pub fn parse_id(text: &str) -> Result<U256> {
    text.trim().parse().with_context(|| format!("{text:?} is not a request id"))
}

pub async fn status(chain: &ChainArgs, id: &str) -> Result<()> {
    let client = chain.reader().await?;
    let id = parse_id(id)?;
    let status = client.status(id).await?;
    println!("request id: {id:#x}");
    println!("status: {status:?}");
    if status != RequestStatus::Unknown {
        let record = client.record(id).await?;
        println!("price: {}", show_native(U256::from(record.price)));
        if !record.locker.is_zero() {
            println!("locker: {}", record.locker);
            println!("collateral: {}", show_collateral(U256::from(record.collateral)));
        }
        println!("lock deadline: {}", record.lockDeadline);
        println!("deadline: {}", record.deadline);
    }
    Ok(())
}

#[derive(Args)]
pub struct WaitArgs {
    id: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout_secs: u64,
    /// How often to poll the chain.
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
}

pub async fn wait(chain: &ChainArgs, args: WaitArgs) -> Result<()> {
    let client = chain.reader().await?;
    let id = parse_id(&args.id)?;
    let started = Instant::now();
    loop {
        match client.status(id).await? {
            RequestStatus::Fulfilled => break,
            s @ (RequestStatus::Slashable
            | RequestStatus::Slashed
            | RequestStatus::Expired
            | RequestStatus::Refunded
            | RequestStatus::Cancelled) => bail!("request {id:#x} ended {s:?}, without a proof"),
            _ if started.elapsed() > Duration::from_secs(args.timeout_secs) => {
                bail!("request {id:#x} not fulfilled within {} s", args.timeout_secs)
            }
            _ => tokio::time::sleep(Duration::from_millis(args.poll_ms)).await,
        }
    }
    let event: ProofDelivered =
        first_event(&client, id).await?.context("fulfilled, but no ProofDelivered event")?;
    let image_id = client.record(id).await?.imageId;
    let claim = claim_digest(image_id, journal_digest(&event.journal));
    println!("request id: {id:#x}");
    println!("journal: {}", hex::encode(&event.journal));
    println!("seal: 0x{}", hex::encode(&event.seal));
    let fulfilled: RequestFulfilled =
        first_event(&client, id).await?.context("fulfilled, but no RequestFulfilled event")?;
    if event.root == claim {
        let verifier =
            AttestationVerifier::new(client.deployment().verifier, client.provider().clone());
        verifier
            .verify(event.seal.clone(), image_id, journal_digest(&event.journal), fulfilled.prover)
            .call()
            .await
            .context("the verifier contract no longer accepts the seal")?;
        println!("verified: the verifier contract accepts the seal for claim {claim}");
    } else {
        let proof: Vec<B256> = event.seal.chunks(32).map(B256::from_slice).collect();
        ensure!(
            root_from_proof(claim, &proof) == event.root,
            "the inclusion proof does not lead to the root"
        );
        ensure!(
            client.market().verifiedRoots(event.root, fulfilled.prover).call().await?,
            "root {} is not verified for {}",
            event.root,
            fulfilled.prover
        );
        println!("verified: claim {claim} is a leaf of verified root {}", event.root);
    }
    Ok(())
}

#[derive(Args)]
pub struct LockArgs {
    /// The id of a request submitted on-chain.
    #[arg(required_unless_present = "request")]
    id: Option<String>,
    /// A signed off-chain request, as `tiffin market submit --offchain FILE` writes it.
    #[arg(long, conflicts_with = "id")]
    request: Option<PathBuf>,
}

pub async fn lock(chain: &ChainArgs, args: LockArgs) -> Result<()> {
    let client = chain.client().await?;
    let (request, signature) = match (&args.id, &args.request) {
        (Some(id), _) => (submitted(&client, parse_id(id)?).await?, Bytes::new()),
        (None, Some(path)) => signed(path)?,
        (None, None) => bail!("give a request id or --request FILE"),
    };
    client.lock_request(&request, signature).await?;
    let record = client.record(request.id).await?;
    println!("locked: {:#x}", request.id);
    println!("price: {}", show_native(U256::from(record.price)));
    println!("collateral: {}", show_collateral(U256::from(record.collateral)));
    println!("lock deadline: {}", record.lockDeadline);
    println!("deadline: {}", record.deadline);
    Ok(())
}

/// The request as it was submitted on-chain (from its `RequestSubmitted` event).
async fn submitted(client: &MarketClient, id: U256) -> Result<ProofRequest> {
    let event: RequestSubmitted = first_event(client, id)
        .await?
        .with_context(|| format!("request {id:#x} was never submitted on-chain"))?;
    Ok(event.request)
}

/// The first market event of type `E` whose first indexed topic is request `id`.
async fn first_event<E: SolEvent>(client: &MarketClient, id: U256) -> Result<Option<E>> {
    let events = client
        .market()
        .event_filter::<E>()
        .topic1(B256::from(id))
        .from_block(0)
        .query()
        .await
        .with_context(|| format!("reading {} events", E::SIGNATURE))?;
    Ok(events.into_iter().next().map(|(event, _)| event))
}

fn signed(path: &PathBuf) -> Result<(ProofRequest, Bytes)> {
    let file: Value =
        serde_json::from_slice(&std::fs::read(path).with_context(|| format!("reading {path:?}"))?)
            .with_context(|| format!("{path:?} is not JSON"))?;
    let field = |key: &str| -> Result<Vec<u8>> {
        let text = file[key].as_str().with_context(|| format!("{path:?} has no {key}"))?;
        from_hex(text, key)
    };
    let request = ProofRequest::abi_decode(&field("request")?)
        .context("the signed request does not decode")?;
    Ok((request, Bytes::from(field("signature")?)))
}

#[derive(Args)]
pub struct FulfillArgs {
    id: String,
    /// The receipt (bincode, as `tiffin prove` or `tiffin session receipt` writes it).
    #[arg(long)]
    receipt: PathBuf,
    /// The verifier service that checks the receipt and seals it.
    #[arg(long, env = "TIFFIN_VERIFIER_URL")]
    verifier_url: String,
    /// A file (mode 0600) holding the verifier service's bearer token, when it requires one.
    #[arg(long)]
    verifier_token_file: Option<PathBuf>,
}

pub async fn fulfill(chain: &ChainArgs, args: FulfillArgs) -> Result<()> {
    let client = chain.client().await?;
    let id = parse_id(&args.id)?;
    let image_id = client.record(id).await?.imageId;
    let receipt =
        std::fs::read(&args.receipt).with_context(|| format!("reading {:?}", args.receipt))?;
    let url = format!(
        "{}/v1/attest/{}?prover={}",
        args.verifier_url.trim_end_matches('/'),
        hex::encode(image_id),
        client.address()
    );
    let mut post = reqwest::Client::new().post(&url).body(receipt);
    if let Some(path) = &args.verifier_token_file {
        post = post.bearer_auth(tiffin_verifier::read_secret_file(path)?);
    }
    let response = post.send().await.with_context(|| format!("posting to {url}"))?;
    let status = response.status();
    let body: Value = response.json().await.context("the verifier's answer is not JSON")?;
    ensure!(
        status.is_success(),
        "the verifier refused the receipt ({status}): {}",
        body["message"].as_str().unwrap_or("?")
    );
    let journal = from_hex(body["journal"].as_str().unwrap_or_default(), "journal")?;
    let seal = from_hex(body["seal"].as_str().unwrap_or_default(), "seal")?;
    client.fulfill(id, journal.clone().into(), seal.into()).await?;
    println!("fulfilled: {id:#x}");
    println!("journal: {}", hex::encode(journal));
    Ok(())
}

pub async fn slash(chain: &ChainArgs, id: &str) -> Result<()> {
    let client = chain.client().await?;
    let id = parse_id(id)?;
    client.slash(id).await?;
    println!("slashed: {id:#x}");
    Ok(())
}

pub async fn refund(chain: &ChainArgs, id: &str) -> Result<()> {
    let client = chain.client().await?;
    let id = parse_id(id)?;
    let receipt = client.refund(id).await?;
    let refunded = event_in::<RequestRefunded>(&receipt).map(|e| e.amount).unwrap_or_default();
    println!("refunded: {id:#x}");
    println!("amount: {}", show_native(refunded));
    Ok(())
}

pub async fn cancel(chain: &ChainArgs, id: &str) -> Result<()> {
    let client = chain.client().await?;
    let id = parse_id(id)?;
    let receipt = client.cancel(id).await?;
    let refunded = event_in::<RequestCancelled>(&receipt).map(|e| e.refund).unwrap_or_default();
    println!("cancelled: {id:#x}");
    println!("refunded: {}", show_native(refunded));
    Ok(())
}

/// The first event of type `E` a transaction emitted.
fn event_in<E: SolEvent>(receipt: &alloy::rpc::types::TransactionReceipt) -> Option<E> {
    receipt.inner.logs().iter().find_map(|log| log.log_decode::<E>().ok()).map(|l| l.inner.data)
}

#[cfg(test)]
mod tests {
    use super::OfferTiming;

    #[test]
    fn offer_times_grow_with_the_cycles() {
        let table = [
            ("no local run", None, (60, 600, 1200)),
            ("tiny", Some(1_000), (60, 301, 602)),
            ("a million cycles", Some(1_000_000), (80, 400, 800)),
            ("a billion", Some(1_000_000_000), (20_060, 100_300, 200_600)),
        ];
        for (name, cycles, (ramp, lock, timeout)) in table {
            let t = OfferTiming::for_cycles(cycles);
            assert_eq!((t.ramp_up, t.lock_timeout, t.timeout), (ramp, lock, timeout), "{name}");
        }
    }
}
