"""WebhookNotifier: the only publisher on the `webhooks` channel, through the outbox."""
CHANNEL = "webhooks"


class WebhookNotifier:
    """webhook.disabled: a webhook failed continuously for WEBHOOK_DISABLE_AFTER seconds."""

    def __init__(self, publisher):
        self.publisher = publisher

    def webhook_disabled(self, data, outbox):
        outbox.publish(self.publisher, CHANNEL, "webhook.disabled", data)
