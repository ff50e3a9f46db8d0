"""The system banner of the HQ console and the member area: what is down, in zh-CN, from what the portal last saw.

Pure: :func:`alerts_for` turns the stages' reports (the supervisor's ``/stages`` or the stages' ``/readyz``), the
portal's own view of Kafka and of its follower into the lines the banner shows. An empty tuple: all is well, no
banner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from firebus.stages import EMBEDDED_BROKER, StageReport, StagesSeen, StageState

STAGE_NAMES: dict[str, str] = {
    EMBEDDED_BROKER: "嵌入式消息总线（broker）",
    "processors": "流处理（processors：校验、审核、分级发布）",
    "sinks": "输出（sinks：归档、短信）",
    "portal": "门户网站（portal）",
}

STATE_WORDS: dict[StageState, str] = {
    StageState.STARTING: "正在启动，尚未就绪",
    StageState.RESTARTING: "已停止运行，正在自动重启",
    StageState.FAILED: "多次失败，已停止自动重启，请运维人员立即处理",
    StageState.STOPPED: "已停止运行",
    StageState.RUNNING: "运行中",
}


@dataclass(frozen=True)
class Alert:
    """One line of the banner: what (``headline``) and what the supervisor or the probe says (``detail``)."""

    key: str
    """The stage concerned, or ``kafka`` / ``supervisor`` / ``follower`` / ``broker-lost``."""
    headline: str
    detail: str


def stage_name(stage: str) -> str:
    return STAGE_NAMES.get(stage, stage)


def _stage_alert(report: StageReport, zone: tzinfo) -> Alert:
    words = STATE_WORDS[report.state]
    if report.restarts:
        words += f"（已重启 {report.restarts} 次）"
    said = [f"自 {report.since.astimezone(zone):%H:%M:%S} 起"]
    if report.last_exit:
        said.append(f"上次退出：{report.last_exit}")
    if report.last_error:
        said.append(f"最后错误：{report.last_error}")
    return Alert(report.stage, f"{stage_name(report.stage)}{words}", "；".join(said))


def _broker_lost(report: StageReport, zone: tzinfo) -> Alert:
    return Alert(
        "broker-lost",
        f"嵌入式消息总线于 {report.since.astimezone(zone):%H:%M:%S} 重启，此前总线上的全部信息已丢失",
        "待审核信息、实时火情、分级发布和审计记录均不在总线上了；请运维人员从归档恢复（firebus archive replay）。"
        "嵌入式总线仅供开发和演示，生产环境使用 Apache Kafka。",
    )


def alerts_for(
    seen: StagesSeen, *, kafka_problem: str | None, follower_problem: str | None, zone: tzinfo
) -> tuple[Alert, ...]:
    """The banner's lines, most basic first: Kafka, the portal's own reading of it, the stages, a lost broker."""
    found: list[Alert] = []
    if kafka_problem is not None:
        found.append(
            Alert(
                "kafka",
                "门户与消息总线（Kafka）的连接中断",
                f"实时火情、待审核队列和发布信息可能不是最新的；{kafka_problem}",
            )
        )
    if follower_problem is not None:
        found.append(Alert("follower", "门户已停止读取消息总线，页面信息不再更新", follower_problem))
    if seen.problem is not None:
        found.append(Alert("supervisor", "无法获取各运行环节的状态", seen.problem))
    found += [_stage_alert(report, zone) for report in seen.unhealthy]
    found += [
        _broker_lost(report, zone)
        for report in seen.reports
        if report.stage == EMBEDDED_BROKER and report.healthy and report.restarts
    ]
    return tuple(found)
