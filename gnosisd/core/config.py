"""Configuration: config/config.yaml validated by pydantic-settings, with environment overrides.

Precedence (highest first): environment variables (GNOSIS_*, ALPACA_*), the git-ignored .env file,
the YAML file, the built-in defaults (the runbook's values). Secrets come only from the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from annotated_types import Ge, Gt, Le, Lt
from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gnosisd.core.enums import StrategyType
from gnosisd.core.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config/config.yaml")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
# A cell of the trade agent's routing table: "<direction>.<vol state>" (docs/strategies.md).
RoutingCell = Literal[
    "bullish.low", "bullish.mid", "bullish.high",
    "bearish.low", "bearish.mid", "bearish.high",
    "neutral.low", "neutral.mid", "neutral.high",
]  # fmt: skip


class RuntimeConfig(Section):
    log_level: LogLevel = "INFO"
    logs_dir: Path = Path("logs")
    runs_dir: Path = Path("runs")
    state_dir: Path = Path("state")
    checkpoints_dir: Path = Path("logs/checkpoints")
    enable_checkpointing: bool = True
    symbols: list[str] = Field(default_factory=lambda: ["SPY"], min_length=1, max_length=20)
    chain_refresh_minutes: int = Field(default=5, ge=1, le=60)
    decision_interval_minutes: int = Field(default=30, ge=1, le=390)
    shutdown_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    watchdog_seconds: float = Field(default=30.0, gt=0, le=600)
    # Observability (docs/operations.md): Prometheus endpoint (None: off; 0: any free port),
    # status file for `gnosisd status` (None: <state_dir>/status.json), log retention, and the
    # silence after which a market-data stream counts as stale (every stream stale in a session
    # stops the systemd watchdog pings).
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    status_file: Path | None = None
    log_retention_days: int = Field(default=30, ge=1, le=3650)
    stale_stream_seconds: float = Field(default=120.0, gt=0, le=3600)
    # Journal durability: `orders` fsyncs every orders-journal line as it is written (a power cut
    # cannot lose an order record); `session` fsyncs all files at session close and shutdown only.
    # Every line is one write() either way, so a crash of the process (kill -9) loses nothing.
    journal_fsync: Literal["orders", "session"] = "orders"


class HedgeConfig(Section):
    gamma_squeeze_threshold: float = Field(default=1_000_000.0, gt=0)
    vanna_flow_threshold: float = Field(default=500_000.0, gt=0)
    # Dealer sign convention: "short_puts_long_calls" assumes customers buy puts and sell calls
    # (dealers long call gamma, short put gamma), the common SqueezeMetrics convention.
    dealer_convention: Literal["short_puts_long_calls", "short_all"] = "short_puts_long_calls"
    charm_flow_threshold: float = Field(default=250_000.0, gt=0)  # $ of delta per day (absolute)
    zero_dte_threshold: float = Field(default=0.5, gt=0, le=1)  # 0DTE share of |GEX| for a flag


class LiquidityConfig(Section):
    lookback: int = Field(default=30, ge=2, le=10_000)
    thin_threshold: float = Field(default=0.001, gt=0, le=1)
    max_spread_pct: float = Field(default=0.15, gt=0, le=1)
    min_open_interest: int = Field(default=100, ge=0)
    trade_window: int = Field(default=200, ge=2, le=100_000)  # trades for the effective spread


class SentimentConfig(Section):
    bullish_threshold: float = Field(default=0.3, gt=0, le=1)
    bearish_threshold: float = Field(default=0.3, gt=0, le=1)
    momentum_lookback: int = Field(default=30, ge=2, le=10_000)
    news_half_life_minutes: float = Field(default=120.0, gt=0, le=10_080)  # headline decay


class VolatilityConfig(Section):
    lookback_days: int = Field(default=252, ge=5, le=2520)
    iv_rank_threshold: float = Field(default=0.7, gt=0, lt=1)
    realized_window: int = Field(default=30, ge=2, le=10_000)
    garch_window: int = Field(default=500, ge=100, le=5_000)  # daily returns for GARCH(1,1)
    # Top up a short daily ATM IV history (and the GARCH returns) from the `arch` package's bundled
    # VIX and S&P 500 data, each point tagged as a proxy; "broker" (live on Alpaca) first solves past
    # days from the broker's daily option bars (tagged "broker"), the proxy filling the rest;
    # "none" starts from an empty history (docs/engines.md).
    iv_backfill: Literal["broker", "bundled", "none"] = "broker"
    expansion_change: float = Field(default=0.10, gt=0, lt=1)  # ATM IV rise vs last session
    crush_change: float = Field(default=0.15, gt=0, lt=1)  # ATM IV fall vs last session
    compression_rank: float = Field(default=0.25, ge=0, lt=1)  # iv_rank at or below: compression


class TradeAgentConfig(Section):
    default_capital: float = Field(default=100_000.0, gt=0)
    min_confidence: float = Field(default=0.3, ge=0, le=1)
    max_ideas_per_decision: int = Field(default=1, ge=0, le=20)
    target_dte: int = Field(default=30, ge=1, le=365)
    min_dte: int = Field(default=7, ge=0, le=365)
    long_delta: float = Field(default=0.50, gt=0, lt=1)
    short_delta: float = Field(default=0.30, gt=0, lt=1)
    condor_short_delta: float = Field(default=0.20, gt=0, lt=1)
    spread_width: float = Field(default=5.0, gt=0, le=100)
    # Routing, structures, scoring and sizing: docs/strategies.md explains every key.
    vol_routing: Literal["buy_high_iv", "sell_high_iv"] = "buy_high_iv"
    high_iv_rank: float = Field(default=0.7, gt=0, lt=1)
    low_iv_rank: float = Field(default=0.3, ge=0, lt=1)
    long_option_min_confidence: float = Field(default=0.5, ge=0, le=1)
    routing: dict[RoutingCell, list[StrategyType]] = Field(default_factory=dict)  # cell overrides
    calendar_gap_days: int = Field(default=28, ge=7, le=365)
    diagonal_long_delta: float = Field(default=0.65, gt=0, lt=1)
    view_strength: float = Field(default=0.25, ge=0, le=2)
    vol_view: float = Field(default=0.15, ge=0, lt=1)
    score_liquidity_weight: float = Field(default=0.2, ge=0, le=10)
    score_fit_weight: float = Field(default=0.5, ge=0, le=10)
    kelly_clamp: float = Field(default=0.25, gt=0, le=1)
    max_portfolio_risk_pct: float = Field(default=0.10, gt=0, le=1)
    # Scales of every family's profit target and stop (agents/exits.py); tuned by the optimiser.
    exit_profit_target_scale: float = Field(default=1.0, ge=0.5, le=1.5)
    exit_stop_scale: float = Field(default=1.0, ge=0.5, le=1.5)
    # Composer weights (agents/composer.py; docs/engines.md), tuned by the optimiser.
    composer_gamma_tilt: float = Field(default=0.15, ge=0, le=0.5)
    composer_thin_factor: float = Field(default=0.7, ge=0.1, le=1)
    composer_trend_momentum: float = Field(default=0.5, gt=0, lt=1)


class ExecutionConfig(Section):
    initial_cash: float = Field(default=100_000.0, gt=0)
    slippage_pct: float = Field(default=0.001, ge=0, le=0.1)
    commission_per_contract: float = Field(default=0.65, ge=0, le=10)
    enable_live_trading: bool = False  # must be true AND GNOSIS_LIVE_TRADING_ENABLED=true for live
    broker: Literal["sim", "alpaca"] = "sim"
    alpaca_mode: Literal["paper", "live"] = "paper"
    # On a transition to HALTED (operator, kill switch, daily loss) working orders are always
    # cancelled; "flatten" also sends a closing order for every open position (docs/risk.md).
    halt_policy: Literal["cancel_only", "flatten"] = "cancel_only"
    # Alpaca only: a latched halt also sets the account's broker-side `suspend_trade` (a second,
    # independent layer). Clearing it on `gnosisd resume` needs the second key (docs/risk.md).
    alpaca_suspend_on_halt: bool = False
    alpaca_unsuspend_on_resume: bool = False

    @model_validator(mode="after")
    def _halt_layers_agree(self) -> ExecutionConfig:
        if self.halt_policy == "flatten" and self.alpaca_suspend_on_halt:
            raise ValueError(
                "halt_policy flatten and alpaca_suspend_on_halt true cannot both be set: a "
                "suspended Alpaca account refuses the flattening orders too; choose one"
            )
        return self


class RiskConfig(Section):
    max_trade_risk_pct: float = Field(default=0.02, gt=0, le=0.25)  # GNOSIS_MAX_TRADE_RISK_PCT
    max_daily_loss: float = Field(default=5000.0, gt=0)  # GNOSIS_MAX_DAILY_LOSS, dollars
    max_open_positions: int = Field(default=5, ge=0, le=1000)
    max_orders_per_minute: int = Field(default=10, ge=1, le=10_000)
    stale_data_seconds: float = Field(default=120.0, gt=0, le=3600)
    kill_switch: bool = False  # config override: true blocks every new opening order
    kill_file: Path = Path("state/KILL")  # if this file exists, no new opening order passes
    # Price collar (risk/quotes.py): each leg may sit up to tolerance + tolerance_pct × its mid
    # outside its bid/ask; closes get the looser close_* band and only its through-market side.
    collar_tolerance: float = Field(default=0.05, ge=0, le=10)  # dollars per share per leg
    collar_tolerance_pct: float = Field(default=0.10, ge=0, le=1)  # fraction of the leg's mid
    close_collar_tolerance: float = Field(default=0.25, ge=0, le=50)
    close_collar_tolerance_pct: float = Field(default=0.50, ge=0, le=5)
    # Size of one opening order and of all opening orders approved in the trailing window.
    max_contracts_per_order: int = Field(default=200, ge=1, le=100_000)  # Σ ratio × quantity
    max_premium_per_order: float = Field(default=25_000.0, gt=0)  # |net limit| × qty × 100, $
    max_contracts_per_window: int = Field(default=1_000, ge=1, le=1_000_000)
    max_premium_per_window: float = Field(default=100_000.0, gt=0)
    size_window_minutes: int = Field(default=60, ge=1, le=1440)
    # Fill-and-re-enter loop: more closing fills of one underlying+strategy in the window than
    # this stop its new opening orders.
    max_reentries: int = Field(default=3, ge=1, le=1000)
    reentry_window_minutes: int = Field(default=60, ge=1, le=1440)
    # An opening order identical to one approved this recently (new intent id) is a duplicate.
    duplicate_window_seconds: float = Field(default=30.0, ge=0, le=3600)
    # Σ |max loss| of open positions + the order <= pct × equity; None: trade_agent's value.
    max_portfolio_risk_pct: float | None = Field(default=None, gt=0, le=1)
    # Portfolio greek budgets as fractions of equity (risk/greeks.py defines the units).
    max_delta_pct: float = Field(default=2.0, gt=0, le=100)  # dollar delta
    max_gamma_pct: float = Field(default=0.5, gt=0, le=100)  # dollar gamma per 1% move
    max_vega_pct: float = Field(default=0.01, gt=0, le=10)  # dollars per vol point
    max_theta_pct: float = Field(default=0.005, gt=0, le=10)  # dollars per calendar day
    greek_resume_fraction: float = Field(default=0.8, gt=0, lt=1)  # hysteresis of REDUCING


class ExpiryConfig(Section):
    """Pin risk: positions with a leg expiring today, from N minutes before the close."""

    policy: Literal["close", "flag"] = "close"  # close: closing order; flag: audit warning only
    close_minutes_before: int = Field(default=30, ge=1, le=240)  # before the (early) close


class AlpacaConfig(Section):
    """Broker keys and endpoints: from the environment only (never from the YAML file)."""

    api_key: SecretStr | None = None  # ALPACA_API_KEY
    secret_key: SecretStr | None = None  # ALPACA_SECRET_KEY
    base_url: str | None = None  # ALPACA_BASE_URL (trading REST)
    data_url: str | None = None  # ALPACA_DATA_URL (market-data REST)
    data_stream_url: str | None = None  # ALPACA_DATA_STREAM_URL (stock/option/news streams' base)
    trading_stream_url: str | None = None  # ALPACA_TRADING_STREAM_URL (trade_updates)


class Settings(BaseSettings):
    """The effective configuration of gnosisd."""

    model_config = SettingsConfigDict(extra="forbid", validate_default=True)

    live_trading_enabled: bool = False  # GNOSIS_LIVE_TRADING_ENABLED (kill switch when false)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    hedge: HedgeConfig = Field(default_factory=HedgeConfig)
    liquidity: LiquidityConfig = Field(default_factory=LiquidityConfig)
    sentiment: SentimentConfig = Field(default_factory=SentimentConfig)
    volatility: VolatilityConfig = Field(default_factory=VolatilityConfig)
    trade_agent: TradeAgentConfig = Field(default_factory=TradeAgentConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    expiry: ExpiryConfig = Field(default_factory=ExpiryConfig)
    alpaca: AlpacaConfig = Field(default_factory=AlpacaConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the explicit init values (YAML merged with env overrides by load_settings) count.
        return (init_settings,)

    def live_allowed(self) -> bool:
        """Live orders need the env flag AND the config flag; either false blocks them."""
        return self.live_trading_enabled and self.execution.enable_live_trading


# Flat environment variables the runbook names, and where they land.
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "GNOSIS_LIVE_TRADING_ENABLED": ("live_trading_enabled",),
    "GNOSIS_MAX_TRADE_RISK_PCT": ("risk", "max_trade_risk_pct"),
    "GNOSIS_MAX_DAILY_LOSS": ("risk", "max_daily_loss"),
    "GNOSIS_LOG_LEVEL": ("runtime", "log_level"),
    "GNOSIS_KILL_SWITCH": ("risk", "kill_switch"),
    "ALPACA_API_KEY": ("alpaca", "api_key"),
    "ALPACA_SECRET_KEY": ("alpaca", "secret_key"),
    "ALPACA_BASE_URL": ("alpaca", "base_url"),
    "ALPACA_DATA_URL": ("alpaca", "data_url"),
    "ALPACA_DATA_STREAM_URL": ("alpaca", "data_stream_url"),
    "ALPACA_TRADING_STREAM_URL": ("alpaca", "trading_stream_url"),
}
SECRET_KEYS = frozenset({("alpaca", "api_key"), ("alpaca", "secret_key")})


def _env_values(env_file: Path | None) -> dict[str, str]:
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update({k: v for k, v in os.environ.items() if k in ENV_OVERRIDES})
    return values


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections, got {type(data).__name__}"
        )
    alpaca = data.get("alpaca")
    if isinstance(alpaca, dict):
        for key in ("api_key", "secret_key"):
            if alpaca.get(key):
                raise ConfigError(
                    f"{path}: alpaca.{key} must not be in the file; set ALPACA_"
                    f"{key.upper()} in the environment or the git-ignored .env file"
                )
    return data


def _allowed(loc: tuple[str, ...]) -> str:
    """Describe what a field allows, from its constraints (e.g. 'between 0 and 0.1')."""
    model: type[BaseModel] = Settings
    info = None
    for part in loc:
        fields = model.model_fields
        if part not in fields:
            return "one of the keys: " + ", ".join(fields)
        info = fields[part]
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
    if info is None:
        return "a valid value"
    lo: Any = None
    hi: Any = None
    lo_incl = hi_incl = True
    for meta in info.metadata:
        if isinstance(meta, Ge):
            lo = meta.ge
        elif isinstance(meta, Gt):
            lo, lo_incl = meta.gt, False
        elif isinstance(meta, Le):
            hi = meta.le
        elif isinstance(meta, Lt):
            hi, hi_incl = meta.lt, False
    ann_text = str(info.annotation)
    if "Literal" in ann_text:
        return "one of " + ann_text.split("Literal[", 1)[1].rstrip("]")
    if lo is not None and hi is not None:
        return (
            f"between {lo} ({'inclusive' if lo_incl else 'exclusive'}) and {hi} "
            f"({'inclusive' if hi_incl else 'exclusive'})"
        )
    if lo is not None:
        return f"{'>=' if lo_incl else '>'} {lo}"
    if hi is not None:
        return f"{'<=' if hi_incl else '<'} {hi}"
    return f"a value of type {getattr(info.annotation, '__name__', ann_text)}"


def load_settings(path: Path | None = None, env_file: Path | None = Path(".env")) -> Settings:
    """Load and validate the configuration; raise ConfigError with one line naming key, value, range.

    `path=None` uses config/config.yaml when it exists, else the built-in defaults.
    """
    explicit = path is not None
    cfg_path = path if path is not None else DEFAULT_CONFIG_PATH
    data: dict[str, Any] = {}
    if cfg_path.exists() or explicit:
        data = _read_yaml(cfg_path)
    env = _env_values(env_file)
    origin: dict[tuple[str, ...], str] = {}
    for name, loc in ENV_OVERRIDES.items():
        if name in env and env[name] != "":
            node = data
            for part in loc[:-1]:
                sub = node.get(part)
                if not isinstance(sub, dict):
                    sub = {}
                    node[part] = sub
                node = sub
            node[loc[-1]] = env[name]
            origin[loc] = name
    try:
        return Settings(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join(loc)
        where = f"environment variable {origin[loc]} ({key})" if loc in origin else key
        value = err.get("input")
        if loc in SECRET_KEYS:
            value = "***"
        if err["type"] == "value_error" and isinstance(value, dict):  # a section's own check
            reason = str(err["msg"]).removeprefix("Value error, ")
            msg = f"{cfg_path}: {key}: {reason}"
        elif err["type"] == "extra_forbidden":
            parent = loc[:-1]
            allowed = _allowed((*parent, "__none__")).removeprefix("one of the keys: ")
            msg = f"{cfg_path}: unknown key {key}; allowed keys: {allowed}"
        else:
            msg = f"{cfg_path}: {where} must be {_allowed(loc)}, got {value!r} ({err['msg']})"
        more = len(exc.errors()) - 1
        if more:
            msg += f" [and {more} more error{'s' if more > 1 else ''}]"
        raise ConfigError(msg) from None


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data with secrets masked."""
    data = settings.model_dump(mode="json")
    for section, key in SECRET_KEYS:
        if data[section][key] is not None:
            data[section][key] = "********"
    return data
