//! The SMTP connection `[mail]` describes, with lettre over rustls: certificates are
//! checked against Mozilla's roots plus the operator's `ca_file`, never skipped.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailConfig, SmtpSecurity};

pub type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// How long one step of a conversation with the server may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The transport for `config`; fails when the CA file cannot be read or parsed.
pub fn build(config: &MailConfig) -> Result<Transport, String> {
    let server = &config.server;
    let tls = match server.security {
        SmtpSecurity::Plain => Tls::None,
        SmtpSecurity::StartTls => Tls::Required(tls_parameters(config)?),
        SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(config)?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&server.host)
        .port(server.port)
        .tls(tls)
        .timeout(Some(TIMEOUT));
    if let Some(c) = &config.credentials {
        builder = builder.credentials(Credentials::new(c.user.clone(), c.password().into()));
    }
    Ok(builder.build())
}

fn tls_parameters(config: &MailConfig) -> Result<TlsParameters, String> {
    let mut params = TlsParameters::builder(config.server.host.clone());
    if let Some(path) = &config.ca_file {
        let pem =
            std::fs::read(path).map_err(|e| format!("mail.ca_file {}: {e}", path.display()))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            format!(
                "mail.ca_file {}: not a PEM certificate: {e}",
                path.display()
            )
        })?;
        params = params.add_root_certificate(cert);
    }
    params
        .build_rustls()
        .map_err(|e| format!("mail: TLS settings: {e}"))
}

/// A message from `from` to `to` with both bodies.
pub fn message(
    from: &Mailbox,
    to: &str,
    subject: &str,
    text: String,
    html: String,
) -> Result<Message, String> {
    let to: Mailbox = to
        .parse()
        .map_err(|e| format!("recipient is not a mail address: {e}"))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| format!("message: {e}"))
}

/// Why a delivery failed, and whether trying again could help.
pub struct SendError {
    pub message: String,
    pub permanent: bool,
}

pub async fn send(transport: &Transport, message: Message) -> Result<(), SendError> {
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| SendError {
            permanent: e.is_permanent(),
            message: crate::error::chain(&e),
        })
}

/// Connects to the server (TLS and login included) and says hello, as `quire doctor`
/// checks it.
pub async fn check(config: &MailConfig) -> Result<(), String> {
    let transport = build(config)?;
    match transport.test_connection().await {
        Ok(true) => Ok(()),
        Ok(false) => Err("the server did not answer as an SMTP server".into()),
        Err(e) => Err(crate::error::chain(&e)),
    }
}
