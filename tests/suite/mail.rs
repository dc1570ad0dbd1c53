//! Invitations by email through a test SMTP server written here (it
//! speaks just enough SMTP to accept one message and keeps what it got):
//! with MINO_SMTP_URL the invited address receives the link, the inviter
//! still sees it; with the server down the invitation is made anyway and
//! says why the email did not go.

#![cfg(feature = "ssr")]

use crate::common;

use std::sync::{Arc, Mutex};

use common::spawn_app_with;
use serde_json::json;
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// (envelope recipients, message text) of each message received.
type Inbox = Arc<Mutex<Vec<(Vec<String>, String)>>>;

/// A test SMTP server on 127.0.0.1: its port and what it received.
async fn test_smtp_server() -> (u16, Inbox) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox: Inbox = Arc::default();
    let kept = inbox.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let kept = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test-smtp ready\r\n").await.unwrap();
                let (mut rcpt, mut data, mut in_data) = (vec![], String::new(), false);
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            kept.lock()
                                .unwrap()
                                .push((std::mem::take(&mut rcpt), std::mem::take(&mut data)));
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            data.push_str(&line);
                            data.push('\n');
                        }
                        continue;
                    }
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250 test-smtp\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        rcpt.push(line[8..].trim().trim_matches(['<', '>']).to_string());
                        b"250 ok\r\n"
                    } else if upper.starts_with("DATA") {
                        in_data = true;
                        b"354 go on\r\n"
                    } else if upper.starts_with("QUIT") {
                        write.write_all(b"221 bye\r\n").await.unwrap();
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, inbox)
}

/// Owen of Acme invites new.analyst@example.com as `role`, on an app
/// whose SMTP server is 127.0.0.1:`port`: the API's answer.
async fn invite_through(db: PgPool, port: u16, role: &str) -> common::Res {
    let app = spawn_app_with(db, None, |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    })
    .await;
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    app.post(
        &c,
        &format!("/api/v1/orgs/{org}/invitations"),
        json!({"email": "new.analyst@example.com", "role": role}),
    )
    .await
}

#[sqlx::test]
async fn invitations_are_emailed_when_smtp_is_set(db: PgPool) {
    let (port, inbox) = test_smtp_server().await;
    let r = invite_through(db, port, "member").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["emailed"], true, "{:?}", r.body);
    let link = r.body["link"]
        .as_str()
        .expect("the inviter still gets the link");
    let got = inbox.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, vec!["new.analyst@example.com".to_string()]);
    let text = &got[0].1;
    assert!(text.contains("Subject: Join Acme on Mino"), "{text}");
    assert!(text.contains("From: Mino <mino@example.com>"), "{text}");
    // Quoted-printable may wrap long lines: compare without soft breaks.
    let unwrapped = text.replace("=\n", "");
    assert!(
        unwrapped.contains(link),
        "the link is in the message: {text}"
    );
    assert!(
        unwrapped.contains("Owen invited you to join Acme on Mino as member"),
        "{text}"
    );
}

#[sqlx::test]
async fn a_mail_server_that_is_down_does_not_stop_the_invitation(db: PgPool) {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = invite_through(db, port, "viewer").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["emailed"], false);
    assert!(
        r.body["email_error"]
            .as_str()
            .unwrap()
            .contains("mail server"),
        "{:?}",
        r.body
    );
    assert!(r.body["link"].as_str().is_some());
    // Without SMTP configured the answer doesn't mention email at all
    // (every other invitation test).
}
