//! Sign-in and account security (seed 000 §2.2–2.4): password sign-in, throttling with captcha
//! and lockout, second factors, expired passwords, sessions and CSRF, remember-me, API tokens,
//! self-registration, password reset, and that secrets never come back out.

use guanxi_core::time_fmt::{format_utc, now_utc};
use guanxi_server::modules::identity::{secrets, totp};
use guanxi_testkit::{ADMIN_PASSWORD, ADMIN_USERNAME, TestApp, USER_PASSWORD, sign_in, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::helpers::customer;

async fn login(app: &TestApp, login: &str, password: &str) -> guanxi_testkit::Reply {
    app.anonymous()
        .post("/api/v1/auth/login", &json!({"login": login, "password": password}))
        .await
}

#[tokio::test]
async fn anonymous_callers_get_401_except_on_public_endpoints() {
    let app = spawn_app().await;
    let anon = app.anonymous();
    for path in [
        "/api/v1/records/customer",
        "/api/v1/meta/objects",
        "/api/v1/me",
        "/api/v1/audit",
    ] {
        let r = anon.get(path).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{path}"
        );
    }
    let create = anon.post("/api/v1/records/customer", &customer("匿名")).await;
    assert_eq!(create.status, StatusCode::UNAUTHORIZED);
    for path in ["/healthz", "/api/v1/auth/config", "/api/v1/openapi.json"] {
        assert_eq!(anon.get(path).await.status, StatusCode::OK, "{path}");
    }
    let captcha = anon.get("/api/v1/auth/captcha").await;
    assert!(
        captcha.data()["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("data:image/png;base64,"))
    );
}

#[tokio::test]
async fn users_sign_in_by_username_or_email_and_wrong_or_unknown_names_look_the_same() {
    let app = spawn_app().await;
    let ok = login(&app, ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.data()["me"]["user"]["username"], ADMIN_USERNAME);
    let set_cookie: Vec<&str> = ok
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        set_cookie
            .iter()
            .any(|c| c.starts_with("gx_session=") && c.contains("HttpOnly") && c.contains("SameSite=Lax"))
    );
    assert!(
        set_cookie
            .iter()
            .any(|c| c.starts_with("gx_csrf=") && !c.contains("HttpOnly"))
    );
    let by_email = login(&app, "CHIEF@guanxi.test", ADMIN_PASSWORD).await;
    assert_eq!(by_email.status, StatusCode::OK, "email sign-in is case-insensitive");

    let wrong = login(&app, ADMIN_USERNAME, "Wrong#Pass123").await;
    let unknown = login(&app, "nobody_here", "Wrong#Pass123").await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    assert_eq!(wrong.body["error"]["message"], unknown.body["error"]["message"]);
    assert_eq!(wrong.code(), unknown.code());

    let log = app.get("/api/v1/logs/logins?result=failure").await;
    let logins: Vec<&str> = log
        .data()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["login"].as_str())
        .collect();
    assert!(
        logins.contains(&"nobody_here") && logins.contains(&ADMIN_USERNAME),
        "{logins:?}"
    );
    assert!(!log.text.contains("Wrong#Pass123"), "passwords never reach the log");
    let csv = app.get("/api/v1/logs/logins/export?result=failure").await;
    assert_eq!(
        csv.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/csv; charset=utf-8")
    );
    assert!(
        csv.text.starts_with('\u{feff}'),
        "a byte-order mark so Excel reads Chinese headers"
    );
    assert!(csv.text.contains("登录名 Login") && csv.text.contains("nobody_here"));
    let (_, sales) = app.user("log_reader", &["salesperson"], None, None).await;
    assert_eq!(sales.get("/api/v1/logs/logins").await.code(), "forbidden");
    let me = app.get("/api/v1/me").await;
    assert!(!me.text.contains("argon2") && !me.text.contains("password_hash"));
    let user = app
        .get(&format!(
            "/api/v1/records/user/{}",
            app.user_id.as_deref().unwrap_or("")
        ))
        .await;
    assert!(
        !user.text.contains("argon2") && !user.text.contains("password_hash"),
        "{}",
        user.text
    );
}

#[tokio::test]
async fn after_three_failures_a_captcha_is_needed_and_after_five_the_account_locks() {
    let app = spawn_app().await;
    let (_, _) = app.user("zhang_wei", &["salesperson"], None, None).await;
    for i in 0..3 {
        let r = login(&app, "zhang_wei", "Bad#Guess0001").await;
        assert_eq!(r.code(), "invalid_credentials", "failure {i}");
        assert_eq!(r.body["error"]["details"]["captcha_required"], i >= 2);
    }
    let no_captcha = login(&app, "zhang_wei", USER_PASSWORD).await;
    assert_eq!(
        no_captcha.code(),
        "captcha_required",
        "even the right password needs the captcha now"
    );

    // The image's answer is unknown to a test, so plant a captcha with a known answer.
    let expires = format_utc(time::OffsetDateTime::now_utc() + time::Duration::minutes(5));
    let plant = |id: &'static str| {
        let db = app.state.db.clone();
        let expires = expires.clone();
        async move {
            guanxi_store::identity::create_captcha(&db, id, &secrets::token_hash("k7p2q"), &expires)
                .await
                .expect("captcha");
        }
    };
    plant("cap-1").await;
    let wrong_captcha = app
        .anonymous()
        .post(
            "/api/v1/auth/login",
            &json!({"login": "zhang_wei", "password": USER_PASSWORD, "captcha_id": "cap-1", "captcha_answer": "zzzzz"}),
        )
        .await;
    assert_eq!(wrong_captcha.code(), "captcha_invalid");
    let reused = app
        .anonymous()
        .post(
            "/api/v1/auth/login",
            &json!({"login": "zhang_wei", "password": USER_PASSWORD, "captcha_id": "cap-1", "captcha_answer": "k7p2q"}),
        )
        .await;
    assert_eq!(reused.code(), "captcha_invalid", "a captcha can be tried once");
    for id in ["cap-2", "cap-3"] {
        plant(id).await;
        let r = app
            .anonymous()
            .post(
                "/api/v1/auth/login",
                &json!({"login": "zhang_wei", "password": "Bad#Guess0001", "captcha_id": id, "captcha_answer": "K7P2Q"}),
            )
            .await;
        assert!(
            matches!(r.code(), "invalid_credentials" | "account_locked"),
            "{}",
            r.text
        );
    }
    let locked = login(&app, "zhang_wei", USER_PASSWORD).await;
    assert_eq!(
        (locked.status, locked.code()),
        (StatusCode::LOCKED, "account_locked"),
        "{}",
        locked.text
    );
    assert!(locked.body["error"]["details"]["locked_until"].is_string());

    // Unknown names are throttled the same way, so the answers reveal nothing.
    for _ in 0..3 {
        assert_eq!(
            login(&app, "ghost_user", "Bad#Guess0001").await.code(),
            "invalid_credentials"
        );
    }
    assert_eq!(
        login(&app, "ghost_user", "Bad#Guess0001").await.code(),
        "captcha_required"
    );

    let users = app.get("/api/v1/records/user?filter=%7B%22field%22%3A%22username%22%2C%22op%22%3A%22eq%22%2C%22value%22%3A%22zhang_wei%22%7D").await;
    let user = &users.data()[0];
    assert_eq!(user["status"], "locked");
    let unlock = app
        .post(
            &format!(
                "/api/v1/records/user/{}/transitions/unlock",
                user["id"].as_str().unwrap_or("")
            ),
            &json!({}),
        )
        .await;
    assert_eq!(unlock.status, StatusCode::OK, "{}", unlock.text);
    // The name's throttle still holds until its window passes; clear it as time would.
    sqlx::raw_sql("DELETE FROM login_attempts")
        .execute(app.state.db.writer())
        .await
        .expect("clear");
    assert_eq!(login(&app, "zhang_wei", USER_PASSWORD).await.status, StatusCode::OK);
}

#[tokio::test]
async fn disabled_and_pending_accounts_cannot_sign_in() {
    let app = spawn_app().await;
    let (id, client) = app.user("li_na", &["salesperson"], None, None).await;
    assert_eq!(client.get("/api/v1/me").await.status, StatusCode::OK);
    let disable = app
        .post(&format!("/api/v1/records/user/{id}/transitions/disable"), &json!({}))
        .await;
    assert_eq!(disable.status, StatusCode::OK, "{}", disable.text);
    assert_eq!(
        client.get("/api/v1/me").await.status,
        StatusCode::UNAUTHORIZED,
        "disabling ends sessions"
    );
    let r = login(&app, "li_na", USER_PASSWORD).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "account_disabled"));
    let wrong = login(&app, "li_na", "Nope#Nope1234").await;
    assert_eq!(
        wrong.code(),
        "invalid_credentials",
        "without the password nothing about the account is told"
    );
}

#[tokio::test]
async fn an_expired_password_must_be_changed_before_the_session_starts() {
    let app = spawn_app().await;
    let (id, _) = app.user("wang_fang", &["salesperson"], None, None).await;
    let mut sql = guanxi_store::sql::Sql::of(app.state.db.backend(), "UPDATE users SET password_changed_at = ");
    sql.bind("2020-01-01T00:00:00.000000Z")
        .push(" WHERE id = ")
        .bind(id.as_str());
    sql.query()
        .execute(app.state.db.writer())
        .await
        .expect("age the password");
    let r = login(&app, "wang_fang", USER_PASSWORD).await;
    assert_eq!(r.data()["status"], "password_expired", "{}", r.text);
    assert!(r.headers.get("set-cookie").is_none(), "no session before the change");
    let challenge = r.data()["challenge_id"].as_str().unwrap_or_default().to_owned();
    let anon = app.anonymous();
    let same = anon
        .post(
            "/api/v1/auth/password/expired",
            &json!({"challenge_id": challenge, "new_password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(same.body["error"]["field_codes"]["new_password"][0], "password_reused");
    let weak = anon
        .post(
            "/api/v1/auth/password/expired",
            &json!({"challenge_id": challenge, "new_password": "password1"}),
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    let codes = weak.body["error"]["field_codes"]["new_password"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(codes.contains(&json!("password_common")), "{codes:?}");
    let done = anon
        .post(
            "/api/v1/auth/password/expired",
            &json!({"challenge_id": challenge, "new_password": "Fresh#Pass2027"}),
        )
        .await;
    assert_eq!(done.data()["status"], "ok", "{}", done.text);
    assert_eq!(login(&app, "wang_fang", "Fresh#Pass2027").await.data()["status"], "ok");
}

#[tokio::test]
async fn an_authenticator_app_adds_a_second_step_with_recovery_codes() {
    let app = spawn_app().await;
    let (_, client) = app.user("zhao_lei", &["salesperson"], None, None).await;
    let setup = client.post("/api/v1/me/totp/setup", &json!({})).await;
    let secret = setup.data()["secret"].as_str().unwrap_or_default().to_owned();
    assert!(
        setup.data()["qr_image"]
            .as_str()
            .is_some_and(|q| q.starts_with("data:image/svg+xml"))
    );
    let bad = client.post("/api/v1/me/totp/enable", &json!({"code": "000000"})).await;
    assert!(
        bad.status == StatusCode::UNPROCESSABLE_ENTITY
            || totp::current(&secret, "zhao_lei").as_deref() == Some("000000")
    );
    let code = totp::current(&secret, "zhao_lei").expect("code");
    let enabled = client.post("/api/v1/me/totp/enable", &json!({"code": code})).await;
    let recovery: Vec<String> = enabled.data()["recovery_codes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    assert_eq!(recovery.len(), 8, "{}", enabled.text);

    let step = login(&app, "zhao_lei", USER_PASSWORD).await;
    assert_eq!(step.data()["status"], "second_factor");
    let methods = step.data()["methods"].as_array().cloned().unwrap_or_default();
    assert!(methods.contains(&json!("totp")) && methods.contains(&json!("recovery")));
    let challenge = step.data()["challenge_id"].as_str().unwrap_or_default().to_owned();
    let anon = app.anonymous();
    let wrong = anon
        .post(
            "/api/v1/auth/login/second-factor",
            &json!({"challenge_id": challenge, "method": "totp", "code": "12345"}),
        )
        .await;
    assert_eq!(wrong.code(), "invalid_code");
    let code = totp::current(&secret, "zhao_lei").expect("code");
    let ok = anon
        .post(
            "/api/v1/auth/login/second-factor",
            &json!({"challenge_id": challenge, "method": "totp", "code": code}),
        )
        .await;
    assert_eq!(ok.data()["status"], "ok", "{}", ok.text);

    for expected in ["ok", "invalid_code"] {
        let step = login(&app, "zhao_lei", USER_PASSWORD).await;
        let challenge = step.data()["challenge_id"].as_str().unwrap_or_default().to_owned();
        let r = app
            .anonymous()
            .post(
                "/api/v1/auth/login/second-factor",
                &json!({"challenge_id": challenge, "method": "recovery", "code": recovery[0]}),
            )
            .await;
        let got = if r.status == StatusCode::OK {
            r.data()["status"].as_str().unwrap_or("")
        } else {
            r.code()
        };
        assert_eq!(got, expected, "a recovery code works once");
    }
}

#[tokio::test]
async fn a_role_can_require_a_second_factor_sent_by_email() {
    let app = spawn_app().await;
    let (_, client) = app.user("sun_li", &["salesperson"], None, None).await;
    drop(client);
    let role = app.get("/api/v1/records/role?filter=%7B%22field%22%3A%22code%22%2C%22op%22%3A%22eq%22%2C%22value%22%3A%22salesperson%22%7D").await;
    let role = &role.data()[0];
    let r = app
        .patch(
            &format!("/api/v1/records/role/{}", role["id"].as_str().unwrap_or("")),
            &json!({"version": role["version"], "require_2fa": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let step = login(&app, "sun_li", USER_PASSWORD).await;
    assert_eq!(step.data()["methods"], json!(["email"]), "{}", step.text);
    let challenge = step.data()["challenge_id"].as_str().unwrap_or_default().to_owned();
    let anon = app.anonymous();
    let sent = anon
        .post("/api/v1/auth/login/email-code", &json!({"challenge_id": challenge}))
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
    let mail = app
        .mail
        .wait_for("sun_li@guanxi.test", "登录验证码")
        .await
        .expect("the code arrives by SMTP");
    let text = mail.text();
    let code: String = text
        .split("验证码是 ")
        .nth(1)
        .map(|rest| rest.chars().take_while(char::is_ascii_digit).collect())
        .unwrap_or_default();
    assert_eq!(code.len(), 6, "{text}");
    let ok = anon
        .post(
            "/api/v1/auth/login/second-factor",
            &json!({"challenge_id": challenge, "method": "email", "code": code}),
        )
        .await;
    assert_eq!(ok.data()["status"], "ok", "{}", ok.text);
}

#[tokio::test]
async fn sessions_can_be_listed_and_ended_and_end_on_password_change() {
    let app = spawn_app().await;
    let (_, first) = app.user("qian_jun", &["salesperson"], None, None).await;
    let second = sign_in(&app.base_url, "qian_jun", USER_PASSWORD)
        .await
        .expect("second session");
    let sessions = first.get("/api/v1/me/sessions").await;
    let list = sessions.data().as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    let other = list.iter().find(|s| s["current"] == false).expect("other");
    // Each session is used once first, so the server has it cached when it ends: the end must
    // reach the cache too.
    assert_eq!(second.get("/api/v1/me").await.status, StatusCode::OK);
    let ended = first
        .delete(&format!("/api/v1/me/sessions/{}", other["id"].as_str().unwrap_or("")))
        .await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT);
    assert_eq!(second.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);

    let third = sign_in(&app.base_url, "qian_jun", USER_PASSWORD)
        .await
        .expect("third session");
    assert_eq!(third.get("/api/v1/me").await.status, StatusCode::OK);
    let wrong = first
        .post(
            "/api/v1/me/password",
            &json!({"current_password": "Nope#1234567", "new_password": "Other#Pass2027"}),
        )
        .await;
    assert_eq!(
        wrong.body["error"]["field_codes"]["current_password"][0],
        "wrong_password"
    );
    let changed = first
        .post(
            "/api/v1/me/password",
            &json!({"current_password": USER_PASSWORD, "new_password": "Other#Pass2027"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(
        third.get("/api/v1/me").await.status,
        StatusCode::UNAUTHORIZED,
        "every session ends"
    );
    assert_eq!(
        login(&app, "qian_jun", USER_PASSWORD).await.code(),
        "invalid_credentials"
    );
    assert_eq!(login(&app, "qian_jun", "Other#Pass2027").await.data()["status"], "ok");

    let a = sign_in(&app.base_url, "qian_jun", "Other#Pass2027").await.expect("a");
    let b = sign_in(&app.base_url, "qian_jun", "Other#Pass2027").await.expect("b");
    assert_eq!(b.get("/api/v1/me").await.status, StatusCode::OK);
    assert_eq!(
        a.post("/api/v1/me/sessions/revoke-all", &json!({})).await.status,
        StatusCode::OK
    );
    assert_eq!(b.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.get("/api/v1/me").await.status,
        StatusCode::OK,
        "the calling session stays"
    );
    let logout = a.post("/api/v1/auth/logout", &json!({})).await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    assert_eq!(a.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_write_without_the_csrf_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let bare = app.without_csrf();
    let r = bare.post("/api/v1/records/customer", &customer("跨站请求")).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "csrf_failed"));
    assert_eq!(
        bare.get("/api/v1/records/customer").await.body["meta"]["total"],
        0,
        "reads need no token"
    );
}

#[tokio::test]
async fn remember_me_signs_a_browser_back_in_once_per_token() {
    let app = spawn_app().await;
    app.user("zhou_min", &["salesperson"], None, None).await;
    let browser = app.anonymous();
    let r = browser
        .post(
            "/api/v1/auth/login",
            &json!({"login": "zhou_min", "password": USER_PASSWORD, "remember_me": true}),
        )
        .await;
    let remember = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("gx_remember="))
        .map(str::to_owned)
        .expect("remember-me cookie");
    assert!(remember.contains("HttpOnly") && remember.contains("Max-Age="));
    assert!(
        !remember.contains(USER_PASSWORD),
        "the password is never stored on the device"
    );
    let value = remember.split(';').next().unwrap_or_default().to_owned();

    // The session ends (idle timeout), the remember-me cookie remains.
    sqlx::raw_sql("DELETE FROM sessions")
        .execute(app.state.db.writer())
        .await
        .expect("expire");
    let returning = app
        .read(
            app.anonymous()
                .client
                .get(format!("{}/api/v1/me", app.base_url))
                .header("cookie", &value),
        )
        .await;
    assert_eq!(returning.status, StatusCode::OK, "{}", returning.text);
    assert!(
        returning
            .headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().is_ok_and(|c| c.starts_with("gx_remember=")))
    );

    let replay = app
        .read(
            app.anonymous()
                .client
                .get(format!("{}/api/v1/me", app.base_url))
                .header("cookie", &value),
        )
        .await;
    assert_eq!(
        replay.status,
        StatusCode::UNAUTHORIZED,
        "an old remember-me token does not work twice"
    );
}

#[tokio::test]
async fn api_tokens_are_shown_once_stored_hashed_scoped_and_revocable() {
    let app = spawn_app().await;
    let read = app
        .post(
            "/api/v1/me/tokens",
            &json!({"name": "报表同步", "scopes": ["read"], "expires_in_days": 30}),
        )
        .await;
    assert_eq!(read.status, StatusCode::CREATED, "{}", read.text);
    let token = read.data()["token"].as_str().unwrap_or_default().to_owned();
    assert!(token.starts_with("gxt_"));
    let listed = app.get("/api/v1/me/tokens").await;
    assert!(!listed.text.contains(&token), "the token is shown only once");
    let stored: Vec<String> = sqlx::query_scalar::<_, String>("SELECT token_hash FROM api_tokens")
        .fetch_all(app.state.db.reader())
        .await
        .unwrap_or_default();
    assert!(stored.iter().all(|h| h != &token && h.len() == 64));

    let bearer = |t: &str| {
        let c = reqwest::Client::new();
        let auth = format!("Bearer {t}");
        (c, auth)
    };
    let (c, auth) = bearer(&token);
    let get = app
        .read(
            c.get(format!("{}/api/v1/records/customer", app.base_url))
                .header("authorization", &auth),
        )
        .await;
    assert_eq!(get.status, StatusCode::OK, "{}", get.text);
    let post = app
        .read(
            c.post(format!("{}/api/v1/records/customer", app.base_url))
                .header("authorization", &auth)
                .json(&customer("令牌")),
        )
        .await;
    assert_eq!(
        post.status,
        StatusCode::FORBIDDEN,
        "a read token cannot write: {}",
        post.text
    );

    let write = app
        .post(
            "/api/v1/me/tokens",
            &json!({"name": "同步写入", "scopes": ["read", "write"]}),
        )
        .await;
    let wtoken = write.data()["token"].as_str().unwrap_or_default().to_owned();
    let (c, wauth) = bearer(&wtoken);
    let created = app
        .read(
            c.post(format!("{}/api/v1/records/customer", app.base_url))
                .header("authorization", &wauth)
                .json(&customer("令牌客户")),
        )
        .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "bearer calls need no CSRF token: {}",
        created.text
    );

    let id = read.data()["id"].as_str().unwrap_or_default();
    assert_eq!(
        app.delete(&format!("/api/v1/me/tokens/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let revoked = app
        .read(
            c.get(format!("{}/api/v1/records/customer", app.base_url))
                .header("authorization", &auth),
        )
        .await;
    assert_eq!(
        (revoked.status, revoked.code()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    let bad = app
        .post(
            "/api/v1/me/tokens",
            &json!({"name": "", "scopes": ["admin"], "expires_in_days": 0}),
        )
        .await;
    let codes = &bad.body["error"]["field_codes"];
    assert!(codes["name"].is_array() && codes["scopes"].is_array() && codes["expires_in_days"].is_array());
}

fn link_token(mail: &guanxi_testkit::smtp::ReceivedMail) -> String {
    let text = mail.text();
    text.split("token=")
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn self_registration_needs_email_verification_and_approval() {
    let app = spawn_app().await;
    let anon = app.anonymous();
    let bad = anon
        .post(
            "/api/v1/auth/register",
            &json!({"username": "admin", "display_name": "坏", "email": "x@guanxi.test", "password": "123456"}),
        )
        .await;
    let codes = &bad.body["error"]["field_codes"];
    assert_eq!(codes["username"][0], "reserved_username");
    assert!(
        codes["password"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("password_too_short")))
    );
    let r = anon
        .post(
            "/api/v1/auth/register",
            &json!({"username": "New_Member", "display_name": "吴新", "email": "wu.xin@guanxi.test", "password": "Join#Guanxi2026"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let pending = login(&app, "new_member", "Join#Guanxi2026").await;
    assert_eq!(
        pending.code(),
        "account_pending",
        "usernames are case-insensitive and start pending"
    );
    let mail = app
        .mail
        .wait_for("wu.xin@guanxi.test", "verify-email")
        .await
        .expect("verification mail");
    let token = link_token(&mail);
    assert_eq!(
        anon.post("/api/v1/auth/verify-email", &json!({"token": token}))
            .await
            .data()["status"],
        "pending_approval"
    );
    assert_eq!(
        anon.post("/api/v1/auth/verify-email", &json!({"token": token}))
            .await
            .code(),
        "invalid_token"
    );

    let users = app.get("/api/v1/records/user?q=new_member").await;
    let user = users.data()[0].clone();
    assert_eq!(user["status"], "pending");
    assert!(user["email_verified_at"].is_string());
    let approve = app
        .post(
            &format!(
                "/api/v1/records/user/{}/transitions/approve",
                user["id"].as_str().unwrap_or("")
            ),
            &json!({}),
        )
        .await;
    assert_eq!(approve.status, StatusCode::OK, "{}", approve.text);
    assert_eq!(
        login(&app, "new_member", "Join#Guanxi2026").await.data()["status"],
        "ok"
    );
}

#[tokio::test]
async fn a_reset_link_is_mailed_works_once_and_ends_sessions() {
    let app = spawn_app().await;
    let (_, session) = app.user("he_ping", &["salesperson"], None, None).await;
    let anon = app.anonymous();
    let unknown = anon
        .post("/api/v1/auth/password/forgot", &json!({"login": "no_such_user"}))
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::ACCEPTED,
        "the same answer for unknown names"
    );
    let known = anon
        .post("/api/v1/auth/password/forgot", &json!({"login": "he_ping@guanxi.test"}))
        .await;
    assert_eq!(known.status, StatusCode::ACCEPTED);
    let mail = app
        .mail
        .wait_for("he_ping@guanxi.test", "reset-password")
        .await
        .expect("reset mail");
    let token = link_token(&mail);
    let weak = anon
        .post(
            "/api/v1/auth/password/reset",
            &json!({"token": token, "new_password": "abc"}),
        )
        .await;
    assert_eq!(
        weak.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a weak password does not use up the link"
    );
    let ok = anon
        .post(
            "/api/v1/auth/password/reset",
            &json!({"token": token, "new_password": "Reset#Guanxi2027"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let again = anon
        .post(
            "/api/v1/auth/password/reset",
            &json!({"token": token, "new_password": "Again#Guanxi2028"}),
        )
        .await;
    assert_eq!(again.code(), "invalid_token", "a reset link works once");
    assert_eq!(session.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&app, "he_ping", "Reset#Guanxi2027").await.data()["status"], "ok");
    assert!(
        !app.mail
            .all()
            .iter()
            .any(|m| m.to.iter().any(|t| t.contains("no_such_user")))
    );
}

#[tokio::test]
async fn usernames_follow_the_rules_when_an_administrator_creates_users() {
    let app = spawn_app().await;
    for (name, code) in [
        ("ab", "invalid_username"),
        ("_hidden", "invalid_username"),
        ("Root", "reserved_username"),
    ] {
        let r = app
            .post("/api/v1/records/user", &json!({"username": name, "display_name": "x"}))
            .await;
        assert_eq!(
            r.body["error"]["field_codes"]["username"][0], code,
            "{name}: {}",
            r.text
        );
    }
    let ok = app
        .create("user", json!({"username": "Chen_Jing", "display_name": "陈静"}))
        .await;
    assert_eq!(ok["username"], "chen_jing");
    let dup = app
        .post(
            "/api/v1/records/user",
            &json!({"username": "chen_jing", "display_name": "另一个"}),
        )
        .await;
    assert_eq!(dup.body["error"]["field_codes"]["username"][0], "duplicate");
    let id = ok["id"].as_str().unwrap_or_default();
    let set = app
        .post(
            &format!("/api/v1/admin/users/{id}/password"),
            &json!({"password": "Temp#Guanxi2026"}),
        )
        .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{}", set.text);
    assert_eq!(
        login(&app, "chen_jing", "Temp#Guanxi2026").await.data()["status"],
        "password_expired",
        "an administrator's password must be changed at first sign-in"
    );
}

#[tokio::test]
async fn me_describes_the_callers_permissions_for_the_ui() {
    let app = spawn_app().await;
    let (_, sales) = app.user("liu_yang", &["salesperson"], None, None).await;
    let me = sales.get("/api/v1/me").await;
    assert_eq!(me.data()["permissions"]["customer"]["read"], "department");
    assert_eq!(me.data()["field_rules"]["customer"]["credit_status"], "read_only");
    assert_eq!(me.data()["is_admin"], false);
    assert_eq!(app.get("/api/v1/me").await.data()["is_admin"], true);
    let roles: Vec<Json> = me.data()["roles"].as_array().cloned().unwrap_or_default();
    assert_eq!(roles[0]["code"], "salesperson");
    assert!(now_utc().len() > 10);
}
