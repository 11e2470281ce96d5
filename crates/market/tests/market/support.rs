//! A market on a fresh anvil with a funded requestor and two provers, plus the books check.

use alloy::primitives::{Address, B256, Bytes, U256, b256};
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::SolEvent;
use tiffin_market::request::request_id;
use tiffin_market::{
    Attestor, DevChain, Input, MarketClient, MarketError, Offer, Predicate, ProofRequest,
};

pub const IMAGE_ID: B256 =
    b256!("1111111111111111111111111111111111111111111111111111111111111111");
pub const OTHER_IMAGE_ID: B256 =
    b256!("2222222222222222222222222222222222222222222222222222222222222222");
pub const SET_BUILDER_ID: B256 =
    b256!("5e75e75e75e75e75e75e75e75e75e75e75e75e75e75e75e75e75e75e75e75e75");

pub const DEPOSIT: u64 = 1_000_000;
pub const COLLATERAL: u64 = 10_000;
pub const MIN_PRICE: u64 = 1_000;
pub const MAX_PRICE: u64 = 2_000;
pub const RAMP_UP: u32 = 100;
pub const LOCK_TIMEOUT: u32 = 200;
pub const TIMEOUT: u32 = 300;
pub const LOCK_COLLATERAL: u64 = 1_000;

pub const REQUESTOR_KEY: usize = 2;
pub const PROVER_KEY: usize = 3;
pub const OTHER_KEY: usize = 4;
/// A dev key that never deposits anything.
pub const PAUPER_KEY: usize = 5;

pub fn u(n: u64) -> U256 {
    U256::from(n)
}

/// The offer's price `t` seconds after bidding starts (within the ramp).
pub fn price_at(t: u64) -> u64 {
    MIN_PRICE + (MAX_PRICE - MIN_PRICE) * t / RAMP_UP as u64
}

pub struct Market {
    pub chain: DevChain,
    pub deployer: MarketClient,
    pub requestor: MarketClient,
    pub prover: MarketClient,
    pub other: MarketClient,
    pub attestor: Attestor,
    /// Bidding on every request made by `request` starts here.
    pub bidding_start: u64,
    pub minted: U256,
    next_index: u32,
}

impl Market {
    /// A fresh chain: the requestor has DEPOSIT wei in the market, each prover COLLATERAL tokens.
    pub async fn start() -> Market {
        let chain = DevChain::start(SET_BUILDER_ID).await.expect("dev chain");
        let deployer = chain.client(0).await.unwrap();
        let requestor = chain.client(REQUESTOR_KEY).await.unwrap();
        let prover = chain.client(PROVER_KEY).await.unwrap();
        let other = chain.client(OTHER_KEY).await.unwrap();
        requestor.deposit(u(DEPOSIT)).await.unwrap();
        for p in [&prover, &other] {
            deployer.mint_collateral(p.address(), u(COLLATERAL)).await.unwrap();
            p.deposit_collateral(u(COLLATERAL)).await.unwrap();
        }
        let bidding_start = chain.now().await.unwrap() + 100;
        let attestor = chain.attestor().unwrap();
        Market {
            chain,
            deployer,
            requestor,
            prover,
            other,
            attestor,
            bidding_start,
            minted: u(2 * COLLATERAL),
            next_index: 0,
        }
    }

    pub fn offer(&self) -> Offer {
        Offer {
            minPrice: u(MIN_PRICE),
            maxPrice: u(MAX_PRICE),
            biddingStart: self.bidding_start,
            rampUpPeriod: RAMP_UP,
            lockTimeout: LOCK_TIMEOUT,
            timeout: TIMEOUT,
            lockCollateral: u(LOCK_COLLATERAL),
        }
    }

    /// A new request by the requestor for IMAGE_ID whose journal must be `journal`.
    pub fn request(&mut self, journal: &[u8]) -> ProofRequest {
        self.request_with(Predicate::journal_equals(journal))
    }

    pub fn request_with(&mut self, predicate: Predicate) -> ProofRequest {
        self.next_index += 1;
        ProofRequest::new(
            request_id(self.requestor.address(), self.next_index),
            IMAGE_ID,
            predicate,
            "http://127.0.0.1:1/guest.bin",
            Input::inline(b"input".to_vec()),
            self.offer(),
        )
    }

    /// Submits on-chain and locks by the prover at `t` (seconds after bidding start).
    pub async fn submit_and_lock(&mut self, journal: &[u8], t: u64) -> ProofRequest {
        let request = self.request(journal);
        self.requestor.submit_request(&request, U256::ZERO).await.unwrap();
        self.at(t).await;
        self.prover.lock_request(&request, Bytes::new()).await.unwrap();
        request
    }

    /// The next transaction is mined `offset` seconds after bidding start.
    pub async fn at(&self, offset: u64) {
        self.chain.set_next_block_timestamp(self.bidding_start + offset).await.unwrap();
    }

    /// Mines an empty block `offset` seconds after bidding start (views read the latest block).
    pub async fn mine(&self, offset: u64) {
        self.chain.mine_at(self.bidding_start + offset).await.unwrap();
    }

    pub fn lock_deadline(&self) -> u64 {
        u64::from(LOCK_TIMEOUT)
    }

    pub fn deadline(&self) -> u64 {
        u64::from(TIMEOUT)
    }

    /// A valid seal for IMAGE_ID producing `journal`, made out to the prover.
    pub fn seal(&self, journal: &[u8]) -> Bytes {
        self.seal_for(self.prover.address(), journal)
    }

    /// A valid seal for IMAGE_ID producing `journal`, made out to `prover`.
    pub fn seal_for(&self, prover: Address, journal: &[u8]) -> Bytes {
        self.attestor.attest_journal(IMAGE_ID, journal, prover).unwrap()
    }

    pub fn accounts(&self) -> [Address; 5] {
        [
            self.deployer.address(),
            self.requestor.address(),
            self.prover.address(),
            self.other.address(),
            self.chain.address(PAUPER_KEY),
        ]
    }

    /// (native balance in the market, collateral balance in the market) of `client`.
    pub async fn balances(&self, account: Address) -> (U256, U256) {
        let c = &self.deployer;
        (c.balance_of(account).await.unwrap(), c.collateral_balance_of(account).await.unwrap())
    }

    /// Every wei and token is in exactly one place: the market's native balance is the accounts'
    /// balances plus the escrow of the requests in `ids`; its tokens are the accounts' collateral
    /// plus the lockers' escrowed collateral; the token supply is the minted amount less burns.
    pub async fn assert_books_balance(&self, ids: &[U256]) {
        let c = &self.deployer;
        let market = c.deployment().market;
        let (mut balances, mut collateral, mut held) = (U256::ZERO, U256::ZERO, U256::ZERO);
        for account in self.accounts() {
            let (native, coll) = self.balances(account).await;
            balances += native;
            collateral += coll;
            held += c.token_balance_of(account).await.unwrap();
        }
        let (mut escrow, mut locked) = (U256::ZERO, U256::ZERO);
        for id in ids {
            let record = c.record(*id).await.unwrap();
            if record.state == 1 || record.state == 2 {
                escrow += U256::from(record.price);
            }
            if record.state == 2 {
                locked += U256::from(record.collateral);
            }
        }
        let m = c.market();
        let total_escrow = m.totalEscrow().call().await.unwrap();
        let total_locked = m.totalCollateralEscrow().call().await.unwrap();
        let burned = m.totalCollateralBurned().call().await.unwrap();
        let market_tokens = c.token_balance_of(market).await.unwrap();
        let supply = c.token().totalSupply().call().await.unwrap();
        assert_eq!(total_escrow, escrow, "escrow of the requests");
        assert_eq!(self.chain.native_balance(market).await.unwrap(), balances + escrow, "native");
        assert_eq!(total_locked, locked, "collateral escrow of the requests");
        assert_eq!(market_tokens, collateral + locked, "market's tokens");
        assert_eq!(supply, held + market_tokens, "token holders");
        assert_eq!(self.minted, supply + burned, "minted = supply + burned");
    }
}

/// The first event of type `E` in `receipt`.
pub fn event<E: SolEvent>(receipt: &TransactionReceipt) -> E {
    receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| log.log_decode::<E>().ok())
        .map(|log| log.inner.data)
        .unwrap_or_else(|| panic!("no {} event", E::SIGNATURE))
}

/// The Solidity error a failed call reverted with.
pub fn reverted<T: std::fmt::Debug>(result: Result<T, MarketError>) -> String {
    match result {
        Err(e @ MarketError::Reverted { .. }) => e.revert_name().unwrap().to_string(),
        other => panic!("expected a revert, got {other:?}"),
    }
}
