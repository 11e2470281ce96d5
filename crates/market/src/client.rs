//! A typed client for one key: accounts, requests, locks, fulfilments, slashing and views.

use crate::bindings::{
    AttestationVerifier::{self, AttestationVerifierInstance},
    CollateralToken::{self, CollateralTokenInstance},
    Fulfillment, Offer, ProofMarket,
    ProofMarket::{ProofMarketInstance, RequestRecord},
    ProofRequest,
};
use crate::deployment::Deployment;
use crate::error::{MarketError, Result};
use crate::request::RequestStatus;
use crate::transaction::{DEFAULT_TX_TIMEOUT, TxPolicy, send_with, signing_provider};
use alloy::contract::{CallBuilder, CallDecoder};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use std::time::Duration;

/// The market as one account sees it. Use one client per key: transactions from one key must be
/// sent one after the other.
#[derive(Debug, Clone)]
pub struct MarketClient {
    provider: DynProvider,
    signer: PrivateKeySigner,
    deployment: Deployment,
    chain_id: u64,
    tx: TxPolicy,
    /// Wei per gas added to the estimated fees of lock transactions.
    lock_extra_fee: Option<u128>,
}

impl MarketClient {
    pub async fn connect(
        rpc_url: &str,
        signer: PrivateKeySigner,
        deployment: Deployment,
    ) -> Result<Self> {
        let provider = signing_provider(rpc_url, signer.clone())?;
        let chain_id =
            provider.get_chain_id().await.map_err(|e| MarketError::Rpc(e.to_string()))?;
        let tx = TxPolicy::timeout(DEFAULT_TX_TIMEOUT);
        Ok(Self { provider, signer, deployment, chain_id, tx, lock_extra_fee: None })
    }

    /// Sets how long a transaction may stay pending before it is reported as timed out.
    pub fn with_tx_timeout(mut self, timeout: Duration) -> Self {
        self.tx.timeout = timeout;
        self
    }

    /// Resends a transaction still pending after `every` with the same nonce and higher fees
    /// ([`crate::transaction::bump`]); `None`: never.
    pub fn with_fee_bumps(mut self, every: Option<Duration>) -> Self {
        self.tx.bump_every = every;
        self
    }

    /// Adds `extra` wei per gas to the estimated fees of lock transactions (to win lock races).
    pub fn with_lock_priority_fee(mut self, extra: Option<u128>) -> Self {
        self.lock_extra_fee = extra;
        self
    }

    pub fn address(&self) -> Address {
        self.signer.address()
    }

    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    pub fn market(&self) -> ProofMarketInstance<DynProvider> {
        ProofMarket::new(self.deployment.market, self.provider.clone())
    }

    pub fn token(&self) -> CollateralTokenInstance<DynProvider> {
        CollateralToken::new(self.deployment.collateral_token, self.provider.clone())
    }

    async fn send<D: CallDecoder + Clone>(
        &self,
        action: &'static str,
        call: CallBuilder<&DynProvider, D>,
    ) -> Result<TransactionReceipt> {
        send_with(action, call, self.tx).await
    }

    // ---- accounts ----

    pub async fn deposit(&self, amount: U256) -> Result<TransactionReceipt> {
        self.send("deposit", self.market().deposit().value(amount)).await
    }

    pub async fn withdraw(&self, amount: U256) -> Result<TransactionReceipt> {
        self.send("withdraw", self.market().withdraw(amount)).await
    }

    /// Mints collateral tokens (only the token's deployer may).
    pub async fn mint_collateral(&self, to: Address, amount: U256) -> Result<TransactionReceipt> {
        self.send("mint collateral", self.token().mint(to, amount)).await
    }

    /// Approves the market and moves `amount` of the caller's tokens into its collateral account.
    pub async fn deposit_collateral(&self, amount: U256) -> Result<TransactionReceipt> {
        self.send("approve collateral", self.token().approve(self.deployment.market, amount))
            .await?;
        self.send("deposit collateral", self.market().depositCollateral(amount)).await
    }

    pub async fn withdraw_collateral(&self, amount: U256) -> Result<TransactionReceipt> {
        self.send("withdraw collateral", self.market().withdrawCollateral(amount)).await
    }

    // ---- requests ----

    /// Submits `request` on-chain, sending `value` wei to deposit first.
    pub async fn submit_request(
        &self,
        request: &ProofRequest,
        value: U256,
    ) -> Result<TransactionReceipt> {
        self.send("submit request", self.market().submitRequest(request.clone()).value(value)).await
    }

    /// Signs `request` off-chain for this market (the caller must be its requestor).
    pub fn sign_request(&self, request: &ProofRequest) -> Result<Bytes> {
        request.sign(&self.signer, self.deployment.market, self.chain_id)
    }

    /// Locks `request`; `signature` is the requestor's for an off-chain request, empty otherwise.
    pub async fn lock_request(
        &self,
        request: &ProofRequest,
        signature: Bytes,
    ) -> Result<TransactionReceipt> {
        let market = self.market();
        let call = market.lockRequest(request.clone(), signature);
        let policy = TxPolicy { extra_priority_fee: self.lock_extra_fee, ..self.tx };
        send_with("lock request", call, policy).await
    }

    pub async fn fulfill(
        &self,
        id: U256,
        journal: Bytes,
        seal: Bytes,
    ) -> Result<TransactionReceipt> {
        self.send("fulfill", self.market().fulfill(id, journal, seal)).await
    }

    pub async fn submit_root(&self, root: B256, seal: Bytes) -> Result<TransactionReceipt> {
        self.send("submit root", self.market().submitRoot(root, seal)).await
    }

    pub async fn fulfill_batch(
        &self,
        root: B256,
        fills: Vec<Fulfillment>,
    ) -> Result<TransactionReceipt> {
        self.send("fulfill batch", self.market().fulfillBatch(root, fills)).await
    }

    pub async fn submit_root_and_fulfill(
        &self,
        root: B256,
        seal: Bytes,
        fills: Vec<Fulfillment>,
    ) -> Result<TransactionReceipt> {
        self.send("submit root and fulfill", self.market().submitRootAndFulfill(root, seal, fills))
            .await
    }

    pub async fn slash(&self, id: U256) -> Result<TransactionReceipt> {
        self.send("slash", self.market().slash(id)).await
    }

    pub async fn refund(&self, id: U256) -> Result<TransactionReceipt> {
        self.send("refund", self.market().refund(id)).await
    }

    /// Closes one of this account's requests that nobody locked (an unused id, e.g. a signed
    /// off-chain request, or an open on-chain one, whose escrow comes back).
    pub async fn cancel(&self, id: U256) -> Result<TransactionReceipt> {
        self.send("cancel", self.market().cancel(id)).await
    }

    // ---- the verifier's attestor set (its owner only) ----

    pub fn verifier(&self) -> AttestationVerifierInstance<DynProvider> {
        AttestationVerifier::new(self.deployment.verifier, self.provider.clone())
    }

    pub async fn add_attestor(&self, attestor: Address) -> Result<TransactionReceipt> {
        self.send("add attestor", self.verifier().addAttestor(attestor)).await
    }

    pub async fn remove_attestor(&self, attestor: Address) -> Result<TransactionReceipt> {
        self.send("remove attestor", self.verifier().removeAttestor(attestor)).await
    }

    pub async fn is_attestor(&self, account: Address) -> Result<bool> {
        view(self.verifier().isAttestor(account)).await
    }

    // ---- views ----

    pub async fn balance_of(&self, account: Address) -> Result<U256> {
        view(self.market().balanceOf(account)).await
    }

    pub async fn collateral_balance_of(&self, account: Address) -> Result<U256> {
        view(self.market().collateralBalanceOf(account)).await
    }

    pub async fn token_balance_of(&self, account: Address) -> Result<U256> {
        view(self.token().balanceOf(account)).await
    }

    pub async fn status(&self, id: U256) -> Result<RequestStatus> {
        RequestStatus::try_from(view(self.market().statusOf(id)).await?)
    }

    pub async fn record(&self, id: U256) -> Result<RequestRecord> {
        view(self.market().requestRecord(id)).await
    }

    /// The price of `offer` at time `t`, as the contract computes it.
    pub async fn price_at(&self, offer: &Offer, t: u64) -> Result<U256> {
        view(self.market().priceAt(offer.clone(), t)).await
    }

    /// The image whose journal the market takes as a batch root.
    pub async fn set_builder_image_id(&self) -> Result<B256> {
        view(self.market().setBuilderImageId()).await
    }

    pub async fn request_digest(&self, request: &ProofRequest) -> Result<B256> {
        view(self.market().requestDigest(request.clone())).await
    }
}

/// Runs a read-only call.
async fn view<D: CallDecoder>(call: CallBuilder<&DynProvider, D>) -> Result<D::CallOutput> {
    call.call().await.map_err(|e| crate::revert::from_contract_error("view", e))
}
