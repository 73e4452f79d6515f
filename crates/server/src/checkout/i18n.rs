//! The checkout's two languages: English and Simplified Chinese.

use axum::http::HeaderMap;
use ottgate_core::PaymentMethod;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

/// Every user-visible string of the checkout, in one language.
#[derive(Debug)]
pub struct Strings {
    pub html_lang: &'static str,
    pub title: &'static str,
    pub pay_to: &'static str,
    pub order_ref: &'static str,
    pub choose_method: &'static str,
    pub time_left: &'static str,
    pub expires_at: &'static str,
    pub beijing_time: &'static str,
    pub your_time: &'static str,
    pub expired_note: &'static str,
    pub no_methods: &'static str,
    pub paid_title: &'static str,
    pub paid_body: &'static str,
    pub expired_title: &'static str,
    pub expired_body: &'static str,
    pub closed_title: &'static str,
    pub closed_body: &'static str,
    pub not_found_title: &'static str,
    pub not_found_body: &'static str,
    pub error_title: &'static str,
    pub back_to_merchant: &'static str,
    pub test_mode: &'static str,
    pub test_wallet: &'static str,
    pub test_wallet_note: &'static str,
    pub pay: &'static str,
    pub decline: &'static str,
    pub cancel: &'static str,
    pub wallet_done: &'static str,
    pub continue_label: &'static str,
    pub method_unavailable: &'static str,
    pub secure_note: &'static str,
    pub scan_to_pay: &'static str,
    pub scan_hint: &'static str,
    pub open_simulator: &'static str,
    pub redirecting: &'static str,
    pub card_title: &'static str,
    pub card_finished: &'static str,
    pub card_not_test: &'static str,
    pub card_expiry_bad: &'static str,
    pub card_cvc_bad: &'static str,
    pub card_no_longer: &'static str,
    pub card_number: &'static str,
    pub card_expiry: &'static str,
    pub card_pay: &'static str,
    pub card_bank_asks: &'static str,
    pub card_confirm: &'static str,
    pub card_password: &'static str,
    pub card_note: &'static str,
}

const EN: Strings = Strings {
    html_lang: "en",
    title: "Checkout",
    pay_to: "Pay to",
    order_ref: "Order",
    choose_method: "Choose how to pay",
    time_left: "Time left to pay",
    expires_at: "Expires",
    beijing_time: "Beijing time",
    your_time: "your time",
    expired_note: "This payment has expired.",
    no_methods: "No payment method is available for this order.",
    paid_title: "Payment complete",
    paid_body: "This order has been paid. Thank you.",
    expired_title: "Payment expired",
    expired_body: "The time to pay this order has run out. Please return to the merchant to place it again.",
    closed_title: "Payment not completed",
    closed_body: "This payment was declined and the order is closed. Please return to the merchant.",
    not_found_title: "Checkout not found",
    not_found_body: "This checkout link is not valid. Please return to the merchant and try again.",
    error_title: "Something went wrong",
    back_to_merchant: "Return to merchant",
    test_mode: "TEST MODE — no real money moves",
    test_wallet: "Test wallet",
    test_wallet_note: "This is ottgate's sandbox wallet. Choose the outcome to simulate.",
    pay: "Pay",
    decline: "Decline",
    cancel: "Cancel",
    wallet_done: "This payment attempt is already finished.",
    continue_label: "Continue",
    method_unavailable: "That payment method is not available for this order.",
    secure_note: "Secured by ottgate",
    scan_to_pay: "Scan to pay with",
    scan_hint: "Open the app on your phone and scan this code. This page moves on by itself once you have paid.",
    open_simulator: "Test mode: open the simulated app",
    redirecting: "Taking you to the payment page…",
    card_title: "Test card payment",
    card_finished: "This payment is finished.",
    card_not_test: "Only the test cards listed below are accepted in the sandbox.",
    card_expiry_bad: "The expiry must be MM/YY, this month or later.",
    card_cvc_bad: "The CVC is 3 or 4 digits.",
    card_no_longer: "This payment can no longer be paid.",
    card_number: "Card number",
    card_expiry: "Expiry (MM/YY)",
    card_pay: "Pay",
    card_bank_asks: "The card's bank asks for its password. For this test card it is",
    card_confirm: "Confirm",
    card_password: "Password",
    card_note: "Test cards only: 4111 1111 1111 1111 and 5555 5555 5555 4444 are approved, 4000 0000 0000 0002 is declined, 4000 0200 0000 0000 asks for 3-D Secure (password <code>password</code>). Any expiry to come and any CVC. No other number is accepted, and no number is kept.",
};

const ZH: Strings = Strings {
    html_lang: "zh-CN",
    title: "收银台",
    pay_to: "收款方",
    order_ref: "订单",
    choose_method: "请选择支付方式",
    time_left: "剩余支付时间",
    expires_at: "过期时间",
    beijing_time: "北京时间",
    your_time: "您的当地时间",
    expired_note: "该订单已过期。",
    no_methods: "该订单暂无可用的支付方式。",
    paid_title: "支付成功",
    paid_body: "该订单已支付，谢谢。",
    expired_title: "订单已过期",
    expired_body: "该订单的支付时间已过，请返回商户重新下单。",
    closed_title: "支付未完成",
    closed_body: "支付被拒绝，订单已关闭。请返回商户。",
    not_found_title: "未找到收银台",
    not_found_body: "该支付链接无效，请返回商户重试。",
    error_title: "出错了",
    back_to_merchant: "返回商户",
    test_mode: "测试模式 — 不会产生真实扣款",
    test_wallet: "测试钱包",
    test_wallet_note: "这是 ottgate 的沙箱钱包，请选择要模拟的结果。",
    pay: "支付",
    decline: "拒绝",
    cancel: "取消",
    wallet_done: "该支付尝试已结束。",
    continue_label: "继续",
    method_unavailable: "该支付方式对此订单不可用。",
    secure_note: "由 ottgate 提供安全保障",
    scan_to_pay: "请扫码支付：",
    scan_hint: "请用手机打开应用扫描二维码。支付完成后本页会自动跳转。",
    open_simulator: "测试模式：打开模拟应用",
    redirecting: "正在前往支付页面…",
    card_title: "测试银行卡支付",
    card_finished: "此支付已结束。",
    card_not_test: "沙箱中只接受下方列出的测试卡。",
    card_expiry_bad: "有效期须为 MM/YY，且不早于本月。",
    card_cvc_bad: "CVC 为 3 或 4 位数字。",
    card_no_longer: "此支付已无法完成。",
    card_number: "卡号",
    card_expiry: "有效期（MM/YY）",
    card_pay: "支付",
    card_bank_asks: "发卡行要求输入密码。此测试卡的密码是",
    card_confirm: "确认",
    card_password: "密码",
    card_note: "仅限测试卡：4111 1111 1111 1111 和 5555 5555 5555 4444 会被批准，4000 0000 0000 0002 会被拒绝，4000 0200 0000 0000 会要求 3-D Secure 验证（密码 <code>password</code>）。有效期填未来任意日期，CVC 任意。不接受其他卡号，也不保存任何卡号。",
};

impl Lang {
    pub fn strings(self) -> &'static Strings {
        match self {
            Lang::En => &EN,
            Lang::Zh => &ZH,
        }
    }

    fn from_tag(tag: &str) -> Option<Self> {
        let tag = tag.trim().to_ascii_lowercase();
        if tag == "zh" || tag.starts_with("zh-") || tag.starts_with("zh_") || tag == "cn" {
            Some(Lang::Zh)
        } else if tag == "en" || tag.starts_with("en-") || tag.starts_with("en_") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// `lang=` wins; otherwise the best-weighted supported language of `Accept-Language`;
    /// otherwise English.
    pub fn negotiate(explicit: Option<&str>, headers: &HeaderMap) -> Self {
        if let Some(lang) = explicit.and_then(Self::from_tag) {
            return lang;
        }
        let Some(accept) = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Lang::En;
        };
        let mut best: Option<(f32, Lang)> = None;
        for part in accept.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("");
            let q = pieces
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            if let Some(lang) = Self::from_tag(tag)
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    pub fn method_label(self, method: PaymentMethod) -> &'static str {
        match (self, method) {
            (Lang::En, PaymentMethod::WeChatPay) => "WeChat Pay",
            (Lang::En, PaymentMethod::Alipay) => "Alipay",
            (Lang::En, PaymentMethod::UnionPay) => "UnionPay",
            (Lang::En, PaymentMethod::Gp) => "Credit / debit card",
            (Lang::Zh, PaymentMethod::WeChatPay) => "微信支付",
            (Lang::Zh, PaymentMethod::Alipay) => "支付宝",
            (Lang::Zh, PaymentMethod::UnionPay) => "银联",
            (Lang::Zh, PaymentMethod::Gp) => "银行卡",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use rstest::rstest;

    #[rstest]
    #[case(Some("zh"), None, Lang::Zh)]
    #[case(Some("zh-CN"), Some("en"), Lang::Zh)]
    #[case(Some("en"), Some("zh-CN"), Lang::En)]
    #[case(Some("fr"), Some("zh-CN,zh;q=0.9"), Lang::Zh)]
    #[case(None, Some("fr-FR, en;q=0.5, zh;q=0.8"), Lang::Zh)]
    #[case(None, Some("en-US,en;q=0.9,zh-CN;q=0.3"), Lang::En)]
    #[case(None, Some("de"), Lang::En)]
    #[case(None, None, Lang::En)]
    fn language_is_negotiated(
        #[case] explicit: Option<&str>,
        #[case] accept: Option<&str>,
        #[case] expected: Lang,
    ) {
        let mut headers = HeaderMap::new();
        if let Some(a) = accept {
            headers.insert(
                axum::http::header::ACCEPT_LANGUAGE,
                HeaderValue::from_str(a).unwrap(),
            );
        }
        assert_eq!(Lang::negotiate(explicit, &headers), expected);
    }
}
