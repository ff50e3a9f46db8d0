"""The zh-CN names of the contracts' enumeration values: one vocabulary for every place that shows them.

Message templates may phrase a value as part of a sentence ("经核实为误报"); plain names come from here.
"""

from __future__ import annotations

from enum import StrEnum

ZH_NAMES: dict[str, str] = {
    # fire status
    "reported": "已报告",
    "verified": "已核实",
    "suppressing": "扑救中",
    "contained": "已控制",
    "extinguished": "已扑灭",
    "false_alarm": "误报",
    # traffic measures
    "closure": "封闭",
    "restriction": "限行",
    "escort": "护送",
    # cases
    "arson": "放火",  # 刑法 放火罪
    "illegal_fire_use": "违规用火",
    "opened": "已立案",
    "investigating": "侦查中",
    "solved": "已破案",
    "penalized": "已处罚",
    "transferred": "已移送",
    "closed": "已结案",
    # risk signal colours
    "blue": "蓝色",
    "yellow": "黄色",
    "orange": "橙色",
    "red": "红色",
    # issuing levels and periods
    "province": "省级",
    "city": "市级",
    "county": "县级",
    "fire_hq": "防火指挥部",
    "daily": "日常",
    "fire_season": "防火期",
    "special": "特殊时段",
    "emergency": "应急时段",
    # work categories
    "guidance": "综合指导",
    "inspection": "隐患排查",
    "publicity": "宣传教育",
    "key_area_protection": "重点区域看护",
    "penalty": "违规用火处罚",
    "facility": "设施建设",
    "meeting": "会议",
    "experience": "经验交流",
    # resources
    "water_point": "取水点",
    "watchtower": "瞭望台",
    "checkpoint": "检查站",
    "forest_road": "林区道路",
    "nature_reserve": "自然保护区",
    "natural_forest": "天然林",
    "professional_team": "专业扑火队伍",
    "material_depot": "物资储备库",
    "rescue_force": "救援力量",
    "available": "可用",
    "in_use": "使用中",
    "unavailable": "不可用",
    "retired": "已停用",
    "other": "其他",
}


def zh(value: StrEnum) -> str:
    """The zh-CN name of an enumeration value (its symbol when the vocabulary has none)."""
    return ZH_NAMES.get(value.value, value.value)
