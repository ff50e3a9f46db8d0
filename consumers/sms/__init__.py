"""The SMS sink: recipients directory, zh-CN templates, UCS-2 segmentation, rate limit, quiet hours, a ledger that
never sends the same event to a person twice, and Kannel's HTTP ``sendsms`` as the gateway."""

from consumers.sms.kannel import Gateway, KannelGateway
from consumers.sms.ledger import Ledger, Message, MessageStatus, PartStatus
from consumers.sms.quiet_hours import QuietHours
from consumers.sms.ratelimit import RateLimiter, TokenBucket
from consumers.sms.recipients import Addressed, Directory, Recipient, is_urgent, load_directory, receives
from consumers.sms.segmentation import concatenation_udh, fit, segment, units
from consumers.sms.sink import SmsSink, masked
from consumers.sms.templates import Texts

__all__ = [
    "Addressed",
    "Directory",
    "Gateway",
    "KannelGateway",
    "Ledger",
    "Message",
    "MessageStatus",
    "PartStatus",
    "QuietHours",
    "RateLimiter",
    "Recipient",
    "SmsSink",
    "Texts",
    "TokenBucket",
    "concatenation_udh",
    "fit",
    "is_urgent",
    "load_directory",
    "masked",
    "receives",
    "segment",
    "units",
]
