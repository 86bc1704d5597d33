//! Who is calling: the `authenticate` middleware resolves a session cookie, a remember-me cookie
//! or a bearer API token into a [`Principal`] before any handler runs, enforces CSRF on
//! cookie-authenticated writes, and rotates cookies when it has to. Handlers take
//! [`CurrentActor`] (or [`CurrentPrincipal`]); without a principal that is a 401, so no handler
//! can forget the check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use guanxi_core::access::Access;
use guanxi_core::time_fmt::{format_utc, now_utc};
use guanxi_core::{Actor, Label};
use guanxi_store::identity::{self, RoleGrant, SessionRow, UserAuth};
use time::OffsetDateTime;

use super::secrets::{constant_time_eq, random_token, token_hash};
use crate::error::ApiError;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "gx_session";
pub const CSRF_COOKIE: &str = "gx_csrf";
pub const REMEMBER_COOKIE: &str = "gx_remember";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Prefix of API tokens, so leaked tokens are recognisable by secret scanners.
pub const API_TOKEN_PREFIX: &str = "gxt_";

/// A signed-in caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub actor: Actor,
    pub user: Arc<UserAuth>,
    pub roles: Arc<Vec<RoleGrant>>,
    /// The session, for cookie sign-ins.
    pub session: Option<SessionRow>,
    /// The token's scopes, for API-token calls.
    pub token_scopes: Option<Vec<String>>,
}

/// What a signed-in request needs besides its own work, cached briefly: users' actors (five
/// queries each) and sessions by token hash (one lookup, but a round trip to the database
/// worker on every request, the largest part of a cheap request's cost). Every change to users,
/// roles, departments or sessions on this server clears both at once, so a sign-out or a revoked
/// session ends at once here; other servers pick changes up within the TTL (decision 0010).
#[derive(Default)]
pub struct SignInCache {
    actors: TtlMap<CachedActor>,
    sessions: TtlMap<SessionRow>,
}

/// A user's actor with the user and roles it was computed from.
type CachedActor = (Actor, Arc<UserAuth>, Arc<Vec<RoleGrant>>);

/// How long a cached actor or session is trusted without reading it again.
const CACHE_TTL: Duration = Duration::from_secs(10);
/// Entries kept at most; a full map is emptied rather than evicted entry by entry.
const CACHE_CAPACITY: usize = 10_000;

/// A string-keyed map whose entries expire after [`CACHE_TTL`].
struct TtlMap<V> {
    entries: Mutex<TtlEntries<V>>,
}

struct TtlEntries<V> {
    map: HashMap<String, (Instant, Arc<V>)>,
    /// Bumped by every `clear`: a value read from the database before a clear (a session read
    /// while its sign-out was committing) must not be stored after it.
    generation: u64,
}

/// When a value was read from the database: the instant, and the map's generation then.
#[derive(Clone, Copy)]
struct ReadMark {
    at: Instant,
    generation: u64,
}

impl<V> Default for TtlMap<V> {
    fn default() -> Self {
        TtlMap {
            entries: Mutex::new(TtlEntries {
                map: HashMap::new(),
                generation: 0,
            }),
        }
    }
}

impl<V> TtlMap<V> {
    fn clear(&self) {
        if let Ok(mut m) = self.entries.lock() {
            m.map.clear();
            m.generation += 1;
        }
    }

    fn get(&self, key: &str) -> Option<Arc<V>> {
        let m = self.entries.lock().ok()?;
        m.map
            .get(key)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, v)| v.clone())
    }

    /// Taken just before reading a value from the database, for [`TtlMap::put`].
    fn mark(&self) -> Option<ReadMark> {
        let m = self.entries.lock().ok()?;
        Some(ReadMark {
            at: Instant::now(),
            generation: m.generation,
        })
    }

    /// Stores `v`, read at `read`; nothing is stored if the map was cleared since.
    fn put(&self, key: &str, v: Arc<V>, read: Option<ReadMark>) {
        let Some(read) = read else { return };
        if let Ok(mut m) = self.entries.lock() {
            if m.generation != read.generation {
                return;
            }
            if m.map.len() > CACHE_CAPACITY {
                m.map.clear();
            }
            m.map.insert(key.to_owned(), (read.at, v));
        }
    }

    /// Replaces a cached value with one derived from it (which keeps the original's age, so it
    /// is not trusted longer); nothing happens if the key is no longer cached.
    fn replace(&self, key: &str, v: Arc<V>) {
        if let Ok(mut m) = self.entries.lock()
            && let Some(entry) = m.map.get_mut(key)
        {
            entry.1 = v;
        }
    }
}

impl SignInCache {
    /// Forgets every cached actor and session: called after any change to users, roles,
    /// departments or sessions.
    pub fn clear(&self) {
        self.actors.clear();
        self.sessions.clear();
    }
}

/// The session with this token hash: from the cache, or read (and cached) when absent or stale.
async fn find_session(state: &AppState, hash: &str) -> Result<Option<Arc<SessionRow>>, ApiError> {
    if let Some(s) = state.identity.cache.sessions.get(hash) {
        return Ok(Some(s));
    }
    let read = state.identity.cache.sessions.mark();
    let Some(session) = identity::get_session(&state.db, hash).await? else {
        return Ok(None);
    };
    let session = Arc::new(session);
    state.identity.cache.sessions.put(hash, session.clone(), read);
    Ok(Some(session))
}

/// Records that the session was seen now, in the database and in the cached copy.
async fn touch_session(state: &AppState, session: &SessionRow) -> Result<(), ApiError> {
    identity::touch_session(&state.db, &session.token_hash).await?;
    let mut seen = session.clone();
    seen.last_seen_at = now_utc();
    state
        .identity
        .cache
        .sessions
        .replace(&session.token_hash, Arc::new(seen));
    Ok(())
}

/// Ends one session (sign-out, revocation, an expired or orphaned session).
pub async fn end_session(state: &AppState, token_hash: &str) -> Result<(), ApiError> {
    identity::delete_session(&state.db, token_hash).await?;
    state.identity.cache.clear();
    Ok(())
}

/// Ends every session of a user except `keep` and forgets the user's remember-me tokens.
pub async fn end_user_sessions(state: &AppState, user_id: &str, keep: Option<&str>) -> Result<u64, ApiError> {
    let ended = identity::end_user_sessions(&state.db, user_id, keep).await?;
    state.identity.cache.clear();
    Ok(ended)
}

/// Whether an account may be signed in now.
pub fn account_usable(user: &UserAuth) -> bool {
    match user.status.as_str() {
        "active" => true,
        "locked" => user.locked_until.as_deref().is_some_and(|t| t <= now_utc().as_str()),
        _ => false,
    }
}

/// Loads (or takes from the cache) the actor of an active user.
pub async fn load_actor(state: &AppState, user_id: &str) -> Result<Option<Principal>, ApiError> {
    let cached = match state.identity.cache.actors.get(user_id) {
        Some(c) => c,
        None => {
            let read = state.identity.cache.actors.mark();
            let Some(user) = identity::find_user(&state.db, user_id).await? else {
                return Ok(None);
            };
            let (access, roles) = identity::access_for(&state.db, &user).await?;
            let actor = Actor {
                id: user.id.clone(),
                name: user.display_name.clone(),
                department_id: user.department_id.clone(),
                access: Some(Arc::new(access)),
            };
            let entry = Arc::new((actor, Arc::new(user), Arc::new(roles)));
            state.identity.cache.actors.put(user_id, entry.clone(), read);
            entry
        }
    };
    if !account_usable(&cached.1) {
        return Ok(None);
    }
    Ok(Some(Principal {
        actor: cached.0.clone(),
        user: cached.1.clone(),
        roles: cached.2.clone(),
        session: None,
        token_scopes: None,
    }))
}

/// Reads a cookie from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Builds a `Set-Cookie` value. `max_age` 0 deletes the cookie; `None` makes it last for the
/// browser session.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>, http_only: bool, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; SameSite=Lax");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("gx_invalid=1"))
}

/// Whether cookies must carry `Secure` for this request.
pub fn secure_cookies(state: &AppState, headers: &HeaderMap) -> bool {
    match state.config.auth.secure_cookies.as_str() {
        "always" => true,
        "never" => false,
        _ => headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https")),
    }
}

/// A new session: stores it and returns the cookies that carry it.
pub async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    user_id: &str,
    remember: bool,
) -> Result<(SessionRow, Vec<HeaderValue>), ApiError> {
    let token = random_token().map_err(ApiError::internal)?;
    let csrf = random_token().map_err(ApiError::internal)?;
    let hash = token_hash(&token);
    let now = OffsetDateTime::now_utc();
    let expires = format_utc(now + time::Duration::hours(state.config.auth.session_absolute_hours));
    let ip = client_ip(headers);
    let ua = headers.get("user-agent").and_then(|v| v.to_str().ok());
    identity::create_session(&state.db, &hash, user_id, &csrf, &expires, ip.as_deref(), ua, remember).await?;
    let secure = secure_cookies(state, headers);
    let mut cookies = vec![
        set_cookie(SESSION_COOKIE, &token, None, true, secure),
        set_cookie(CSRF_COOKIE, &csrf, None, false, secure),
    ];
    if remember {
        let selector = random_token().map_err(ApiError::internal)?;
        let validator = random_token().map_err(ApiError::internal)?;
        let days = state.config.auth.remember_days;
        let until = format_utc(now + time::Duration::days(days));
        identity::create_remember_token(&state.db, &selector, &token_hash(&validator), user_id, &until).await?;
        cookies.push(set_cookie(
            REMEMBER_COOKIE,
            &format!("{selector}.{validator}"),
            Some(days * 86_400),
            true,
            secure,
        ));
    }
    let row = identity::get_session(&state.db, &hash)
        .await?
        .ok_or_else(|| ApiError::internal("session vanished"))?;
    Ok((row, cookies))
}

/// Cookies that sign the browser out.
pub fn clear_cookies(secure: bool) -> Vec<HeaderValue> {
    vec![
        set_cookie(SESSION_COOKIE, "", Some(0), true, secure),
        set_cookie(CSRF_COOKIE, "", Some(0), false, secure),
        set_cookie(REMEMBER_COOKIE, "", Some(0), true, secure),
    ]
}

/// The client's address: the first `X-Forwarded-For` hop when present.
pub fn client_ip(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|s| s.trim().to_owned())
        .or_else(|| {
            headers
                .get("x-real-ip")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
}

fn session_valid(state: &AppState, s: &SessionRow) -> bool {
    let now = OffsetDateTime::now_utc();
    let idle_limit = format_utc(now - time::Duration::minutes(state.config.auth.session_idle_minutes));
    s.expires_at > format_utc(now) && s.last_seen_at > idle_limit
}

fn unsafe_method(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn csrf_failed() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf_failed",
        "安全校验失败，请刷新页面后重试",
        "the request is missing its CSRF token; reload the page and try again",
    )
}

/// Resolves the caller, checks CSRF, and adds rotated cookies to the response.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let mut cookies = Vec::new();
    // Owned copies: the request body is not `Sync`, so the request cannot be borrowed across
    // the awaits below.
    let (method, headers) = (req.method().clone(), req.headers().clone());
    match resolve(&state, &method, &headers, &mut cookies).await {
        Ok(Some(p)) => {
            req.extensions_mut().insert(Arc::new(p));
        }
        Ok(None) => {}
        Err(e) => return e.into_response(),
    }
    let mut res = next.run(req).await;
    for c in cookies {
        res.headers_mut().append(SET_COOKIE, c);
    }
    res
}

async fn resolve(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    cookies: &mut Vec<HeaderValue>,
) -> Result<Option<Principal>, ApiError> {
    if let Some(auth) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return bearer(state, auth).await.map(Some);
    }
    if let Some(token) = cookie(headers, SESSION_COOKIE).filter(|t| !t.is_empty()) {
        let hash = token_hash(token);
        if let Some(session) = find_session(state, &hash).await? {
            if session_valid(state, &session) {
                if unsafe_method(method) {
                    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
                    if !constant_time_eq(sent, &session.csrf_token) {
                        return Err(csrf_failed());
                    }
                }
                let Some(mut p) = load_actor(state, &session.user_id).await? else {
                    end_session(state, &hash).await?;
                    cookies.extend(clear_cookies(secure_cookies(state, headers)));
                    return Ok(None);
                };
                let stale = format_utc(OffsetDateTime::now_utc() - time::Duration::seconds(60));
                if session.last_seen_at < stale {
                    touch_session(state, &session).await?;
                }
                p.session = Some(SessionRow::clone(&session));
                return Ok(Some(p));
            }
            end_session(state, &hash).await?;
        }
    }
    if let Some(value) = cookie(headers, REMEMBER_COOKIE).filter(|t| !t.is_empty()) {
        return remembered(state, headers, value, cookies).await;
    }
    Ok(None)
}

/// Signs a returning browser in from its remember-me cookie and rotates that cookie. A cookie
/// whose selector matches but whose validator does not was stolen or replayed: every session of
/// that user ends.
async fn remembered(
    state: &AppState,
    headers: &HeaderMap,
    value: &str,
    cookies: &mut Vec<HeaderValue>,
) -> Result<Option<Principal>, ApiError> {
    let secure = secure_cookies(state, headers);
    let Some((selector, validator)) = value.split_once('.') else {
        cookies.extend(clear_cookies(secure));
        return Ok(None);
    };
    let Some((validator_hash, user_id, expires_at)) = identity::take_remember_token(&state.db, selector).await? else {
        cookies.extend(clear_cookies(secure));
        return Ok(None);
    };
    if !constant_time_eq(&validator_hash, &token_hash(validator)) {
        tracing::warn!(user_id = %user_id, "remember-me token replayed; ending every session of the user");
        end_user_sessions(state, &user_id, None).await?;
        cookies.extend(clear_cookies(secure));
        return Ok(None);
    }
    if expires_at <= now_utc() {
        cookies.extend(clear_cookies(secure));
        return Ok(None);
    }
    let Some(mut p) = load_actor(state, &user_id).await? else {
        cookies.extend(clear_cookies(secure));
        return Ok(None);
    };
    let (session, new_cookies) = start_session(state, headers, &user_id, true).await?;
    cookies.extend(new_cookies);
    p.session = Some(session);
    Ok(Some(p))
}

async fn bearer(state: &AppState, header: &str) -> Result<Principal, ApiError> {
    let invalid = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "访问令牌无效、已过期或已撤销",
            "the API token is invalid, expired or revoked",
        )
    };
    let token = header.strip_prefix("Bearer ").ok_or_else(invalid)?.trim();
    if !token.starts_with(API_TOKEN_PREFIX) {
        return Err(invalid());
    }
    let row = identity::find_api_token(&state.db, &token_hash(token))
        .await?
        .ok_or_else(invalid)?;
    let mut p = load_actor(state, &row.user_id).await?.ok_or_else(invalid)?;
    if !row.scopes.iter().any(|s| s == "write") {
        // A read-only token keeps only the read and export grants of its user.
        if let Some(access) = &p.actor.access {
            let mut limited: Access = (**access).clone();
            for actions in limited.grants.values_mut() {
                if let Some(scope) = actions.get("*").copied() {
                    actions.entry("read".into()).or_insert(scope);
                    actions.entry("export".into()).or_insert(scope);
                }
                actions.retain(|a, _| a == "read" || a == "export");
            }
            p.actor.access = Some(Arc::new(limited));
        }
    }
    let touched = row
        .last_used_at
        .as_deref()
        .is_none_or(|t| t < format_utc(OffsetDateTime::now_utc() - time::Duration::seconds(60)).as_str());
    if touched {
        identity::touch_api_token(&state.db, &row.id).await?;
    }
    p.token_scopes = Some(row.scopes);
    Ok(p)
}

/// The signed-in caller; 401 `unauthenticated` when there is none.
pub struct CurrentPrincipal(pub Arc<Principal>);

impl<S: Send + Sync> FromRequestParts<S> for CurrentPrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Arc<Principal>>()
            .cloned()
            .map(CurrentPrincipal)
            .ok_or_else(ApiError::unauthenticated)
    }
}

/// Whether the actor administers the system (manages users and roles): what the UI calls an
/// administrator, who may for instance change anyone's shared list views.
pub fn is_admin(actor: &Actor) -> bool {
    actor.is_unrestricted() || (actor.can("user.manage") && actor.can("role.update"))
}

/// Requires a permission `object.action` (e.g. `user.manage`), or answers 403.
pub fn require_permission(actor: &Actor, permission: &str) -> Result<(), ApiError> {
    if actor.can(permission) {
        Ok(())
    } else {
        Err(guanxi_core::DomainError::Forbidden(Label {
            zh: "没有执行该操作的权限".into(),
            en: format!("this needs the permission '{permission}'"),
        })
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_before_a_clear_is_not_cached_after_it() {
        let map: TtlMap<&str> = TtlMap::default();
        // A request reads a session; its sign-out commits and clears the cache before the
        // request stores what it read.
        let read = map.mark();
        map.clear();
        map.put("hash", Arc::new("session"), read);
        assert!(
            map.get("hash").is_none(),
            "a signed-out session came back from the cache"
        );

        let read = map.mark();
        map.put("hash", Arc::new("session"), read);
        assert_eq!(map.get("hash").as_deref(), Some(&"session"));
        map.clear();
        assert!(map.get("hash").is_none());
    }

    #[test]
    fn a_replaced_value_keeps_its_age_and_a_forgotten_one_stays_forgotten() {
        let map: TtlMap<u32> = TtlMap::default();
        map.replace("k", Arc::new(2));
        assert!(map.get("k").is_none(), "replace never adds");
        let read = map.mark().map(|r| ReadMark {
            at: r.at.checked_sub(CACHE_TTL).expect("the clock runs longer than the TTL"),
            ..r
        });
        map.put("k", Arc::new(1), read);
        map.replace("k", Arc::new(2));
        assert!(map.get("k").is_none(), "an expired entry stays expired when replaced");
    }
}
