"""Staff pages of the case part (办件): window intake, case list, back-office inbox, case detail
and the center's overview.

Pages are Jinja templates under ``node/templates/cases`` extending the node's ``base.html``,
with ``node/static/cases.css`` and ``node/static/cases.js``.  Every change goes through the JSON
API (``/api/v1/cases`` ...) from the page script with the session's CSRF token; the handlers
here only read.  The UI strings are added to :mod:`onestop.i18n` at import (``ui.cases.*``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from node import auth, ratings, tickets, workdays
from node import db as dbm
from node.cases import common, queries
from node.cases.api import STAFF, WINDOW
from node.keys import CLOCK, CONFIG, DB
from node.views import js_strings, page_lang, render, to_local
from onestop import i18n
from onestop.clock import local_date
from onestop.errors import ApiError, NotFound

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STRINGS: dict[str, dict[str, str]] = {
    # navigation
    "ui.cases.nav.intake": {"zh": "办件受理", "en": "Intake"},
    "ui.cases.nav.list": {"zh": "办件查询", "en": "Cases"},
    "ui.cases.nav.inbox": {"zh": "审查待办", "en": "Review inbox"},
    "ui.cases.nav.overview": {"zh": "办件总览", "en": "Overview"},
    "ui.cases.nav.console": {"zh": "返回窗口工作台", "en": "Back to the window console"},
    # common words
    "ui.cases.case_no": {"zh": "办件编码", "en": "Case number"},
    "ui.cases.items": {"zh": "办理事项", "en": "Service items"},
    "ui.cases.item": {"zh": "事项", "en": "Item"},
    "ui.cases.state": {"zh": "办件状态", "en": "Status"},
    "ui.cases.applicant": {"zh": "申请人", "en": "Applicant"},
    "ui.cases.phone_masked": {"zh": "手机号", "en": "Mobile"},
    "ui.cases.departments": {"zh": "审查部门", "en": "Reviewing departments"},
    "ui.cases.department": {"zh": "部门", "en": "Department"},
    "ui.cases.accepted_date": {"zh": "受理日期", "en": "Accepted"},
    "ui.cases.promised": {"zh": "承诺办结", "en": "Promised by"},
    "ui.cases.statutory": {"zh": "法定时限", "en": "Statutory limit"},
    "ui.cases.deadline": {"zh": "办理时限", "en": "Deadline"},
    "ui.cases.visits": {"zh": "跑动次数", "en": "Visits"},
    "ui.cases.visits_n": {"zh": "{n} 次", "en": "{n}"},
    "ui.cases.created": {"zh": "收件时间", "en": "Opened"},
    "ui.cases.workdays": {"zh": "{n} 个工作日", "en": "{n} working days"},
    "ui.cases.left_n": {"zh": "剩 {n} 个工作日", "en": "{n} working days left"},
    "ui.cases.due_today": {"zh": "今日到期", "en": "Due today"},
    "ui.cases.overdue_n": {"zh": "超期 {n} 个工作日", "en": "{n} working days overdue"},
    "ui.cases.paused_since": {
        "zh": "补正中，{date} 起暂停计时",
        "en": "Paused since {date} (supplement)",
    },
    "ui.cases.on_time": {"zh": "按期", "en": "on time"},
    "ui.cases.late": {"zh": "超期", "en": "late"},
    "ui.cases.instant": {"zh": "即办", "en": "Same day"},
    "ui.cases.workday1": {"zh": "1 个工作日", "en": "1 working day"},
    "ui.cases.mat_state": {"zh": "收取情况", "en": "Status"},
    "ui.cases.rongque_tag": {"zh": "容缺", "en": "To follow"},
    "ui.cases.not_started": {"zh": "未受理，不计时", "en": "Not accepted: no clock"},
    "ui.cases.paused_days": {"zh": "已顺延 {n} 个工作日", "en": "extended by {n} working days"},
    "ui.cases.status.green": {"zh": "正常", "en": "On track"},
    "ui.cases.status.yellow": {"zh": "预警", "en": "Due soon"},
    "ui.cases.status.red": {"zh": "超期", "en": "Overdue"},
    "ui.cases.status.paused": {"zh": "暂停", "en": "Paused"},
    "ui.cases.status.done": {"zh": "已审结", "en": "Decided"},
    "ui.cases.lead": {"zh": "主办", "en": "Lead"},
    "ui.cases.co": {"zh": "协办", "en": "Joint"},
    "ui.cases.open": {"zh": "查看", "en": "Open"},
    "ui.cases.critical": {"zh": "必要", "en": "Required"},
    "ui.cases.optional": {"zh": "可容缺", "en": "May follow"},
    "ui.cases.received": {"zh": "已收取", "en": "Received"},
    "ui.cases.missing": {"zh": "缺少", "en": "Missing"},
    "ui.cases.requested": {"zh": "待补正", "en": "Requested"},
    "ui.cases.files": {"zh": "扫描件", "en": "Scans"},
    "ui.cases.upload": {"zh": "上传扫描件", "en": "Upload scan"},
    "ui.cases.uploaded": {"zh": "已上传 {name}", "en": "Uploaded {name}"},
    "ui.cases.print_notice": {"zh": "打印一次性告知书", "en": "Print the one-time notice"},
    "ui.cases.detail": {"zh": "办件详情", "en": "Case details"},
    "ui.cases.view_detail": {"zh": "查看办件详情", "en": "Open the case"},
    "ui.cases.failed": {"zh": "操作未完成", "en": "Not done"},
    "ui.cases.done_ok": {"zh": "操作成功", "en": "Done"},
    "ui.cases.err.403": {"zh": "无权操作", "en": "Not allowed"},
    "ui.cases.err.404": {"zh": "未找到", "en": "Not found"},
    "ui.cases.err.409": {"zh": "当前状态不允许此操作", "en": "Not possible now"},
    "ui.cases.err.422": {"zh": "请检查填写内容", "en": "Please check the form"},
    "ui.cases.err.title": {"zh": "无法打开此页面", "en": "This page cannot be shown"},
    "ui.cases.err.role": {
        "zh": "您的角色（{role}）无权使用此页面。",
        "en": "Your role ({role}) may not use this page.",
    },
    "ui.cases.err.not_visible": {
        "zh": "办件 {case_no} 不在您所在部门（{dept}）的审查范围内。",
        "en": "Case {case_no} is not reviewed by your department ({dept}).",
    },
    "ui.cases.err.no_case": {
        "zh": "没有编码为 {case_no} 的办件。",
        "en": "There is no case with number {case_no}.",
    },
    "ui.cases.err.no_dept": {
        "zh": "您的账号未设置所属部门，请联系管理员。",
        "en": "Your account has no department; ask an administrator.",
    },
    "ui.cases.err.back": {"zh": "返回", "en": "Back"},
    "ui.cases.neterr": {"zh": "网络异常，请稍后重试", "en": "Network error, please try again"},
    # case states (short)
    "ui.cases.st.pending_materials": {"zh": "待补齐材料", "en": "Waiting for materials"},
    "ui.cases.st.accepted": {"zh": "审查中", "en": "Under review"},
    "ui.cases.st.supplement": {"zh": "待补正", "en": "Supplement requested"},
    "ui.cases.st.approved": {"zh": "审批通过", "en": "Approved"},
    "ui.cases.st.rejected": {"zh": "不予许可", "en": "Rejected"},
    "ui.cases.st.result_ready": {"zh": "待领取", "en": "Result ready"},
    "ui.cases.st.delivered": {"zh": "已送达", "en": "Delivered"},
    # review task states
    "ui.cases.task.pending": {"zh": "审查中", "en": "Reviewing"},
    "ui.cases.task.approved": {"zh": "已通过", "en": "Approved"},
    "ui.cases.task.rejected": {"zh": "不予许可", "en": "Rejected"},
    "ui.cases.task.supplement": {"zh": "要求补正", "en": "Supplement requested"},
    "ui.cases.task.cancelled": {"zh": "已取消", "en": "Cancelled"},
    # intake
    "ui.cases.intake.title": {"zh": "窗口收件受理", "en": "Window intake"},
    "ui.cases.intake.ticket": {"zh": "办事号票", "en": "Ticket"},
    "ui.cases.intake.ticket_choose": {
        "zh": "请选择当前办理的号票",
        "en": "Choose the ticket being served",
    },
    "ui.cases.intake.no_tickets": {
        "zh": "本窗口当前没有叫号中或挂起的号票，请先在窗口工作台叫号。",
        "en": "No ticket is called or suspended at your window: call one in the window console first.",
    },
    "ui.cases.intake.ticket_gone": {
        "zh": "号票 {no} 当前不在窗口办理中（已办结或未叫号），请重新选择。",
        "en": "Ticket {no} is not being served at a window any more; choose another.",
    },
    "ui.cases.intake.called": {"zh": "办理中", "en": "serving"},
    "ui.cases.intake.suspended": {"zh": "挂起", "en": "suspended"},
    "ui.cases.intake.pre": {
        "zh": "网上预审编号（可选）",
        "en": "Online pre-application (optional)",
    },
    "ui.cases.intake.pre_load": {"zh": "载入", "en": "Load"},
    "ui.cases.intake.pre_loaded": {
        "zh": "已载入预审 {ref}：{n} 个事项",
        "en": "Loaded pre-application {ref}: {n} item(s)",
    },
    "ui.cases.intake.catalog": {"zh": "选择办理事项", "en": "Choose service items"},
    "ui.cases.intake.search": {"zh": "按事项名称或编码搜索", "en": "Search by name or code"},
    "ui.cases.intake.no_match": {"zh": "没有匹配的事项", "en": "No matching item"},
    "ui.cases.intake.none_selected": {
        "zh": "请在左侧勾选一个或多个办理事项",
        "en": "Tick one or more service items on the left",
    },
    "ui.cases.intake.checklist": {"zh": "材料清单", "en": "Materials checklist"},
    "ui.cases.intake.all": {"zh": "全部收齐", "en": "All received"},
    "ui.cases.intake.material": {"zh": "材料名称", "en": "Material"},
    "ui.cases.intake.kind": {"zh": "类别", "en": "Kind"},
    "ui.cases.intake.file": {"zh": "扫描件（可选）", "en": "Scan (optional)"},
    "ui.cases.intake.choose_file": {"zh": "选择文件", "en": "Choose file"},
    "ui.cases.intake.promise": {
        "zh": "承诺时限 {n} 个工作日（法定 {s} 个工作日）",
        "en": "Promised in {n} working days (statutory {s})",
    },
    "ui.cases.intake.promise1": {
        "zh": "承诺时限 1 个工作日（法定 {s} 个工作日）",
        "en": "Promised in 1 working day (statutory {s})",
    },
    "ui.cases.intake.ok": {
        "zh": "材料齐全，提交后即予受理。",
        "en": "All materials are in: accepted on submission.",
    },
    "ui.cases.intake.gap_critical": {
        "zh": "缺少 {n} 项必要材料：暂不受理，提交后出具一次性告知书。",
        "en": "{n} required material(s) missing: not accepted, a one-time notice lists them.",
    },
    "ui.cases.intake.gap_optional": {
        "zh": "缺少 {n} 项非必要材料：申请人书面承诺限期补交的，可容缺受理。",
        "en": "{n} optional material(s) missing: accepted if the applicant commits to bring them.",
    },
    "ui.cases.intake.gap_committed": {
        "zh": "容缺受理：缺少 {n} 项非必要材料，申请人承诺限期补交，将一并出具一次性告知书。",
        "en": "Accepted with {n} material(s) to follow; a one-time notice lists them.",
    },
    "ui.cases.intake.commit": {
        "zh": "申请人已签署容缺受理承诺书",
        "en": "The applicant signed the commitment (容缺受理)",
    },
    "ui.cases.intake.catch_up": {"zh": "补交期限", "en": "Bring them by"},
    "ui.cases.intake.catch_up_hint": {
        "zh": "留空即为承诺办结日期",
        "en": "blank: the promised date",
    },
    "ui.cases.intake.submit_accept": {"zh": "受理并生成办件", "en": "Accept the case"},
    "ui.cases.intake.submit_notice": {"zh": "收件并出具告知书", "en": "Issue the notice"},
    "ui.cases.intake.need_ticket": {
        "zh": "请选择号票或载入网上预审",
        "en": "Choose a ticket or load a pre-application",
    },
    "ui.cases.intake.need_item": {"zh": "请至少选择一个办理事项", "en": "Choose at least one item"},
    "ui.cases.intake.submitting": {"zh": "正在提交…", "en": "Submitting…"},
    "ui.cases.intake.uploading": {
        "zh": "正在上传扫描件 {i}/{n}…",
        "en": "Uploading scans {i}/{n}…",
    },
    "ui.cases.intake.upload_failed": {
        "zh": "扫描件 {name} 上传失败：{msg}",
        "en": "Scan {name} was not uploaded: {msg}",
    },
    "ui.cases.intake.done_title": {"zh": "办件已生成", "en": "Case opened"},
    "ui.cases.intake.done_accepted": {
        "zh": "已受理，已短信告知申请人办件编码和承诺办结日期。",
        "en": "Accepted; the applicant gets the number and the date by SMS.",
    },
    "ui.cases.intake.done_pending": {
        "zh": "材料不全，暂未受理。请打印一次性告知书交申请人，补齐后凭办件编码补交。",
        "en": "Materials missing: not accepted yet. Print the one-time notice for the applicant.",
    },
    "ui.cases.intake.done_rongque": {
        "zh": "已容缺受理。请打印一次性告知书交申请人，提醒其在 {date} 前补交。",
        "en": "Accepted with missing materials: print the notice; they are due by {date}.",
    },
    "ui.cases.intake.missing_list": {"zh": "尚缺材料", "en": "Still missing"},
    "ui.cases.intake.next": {"zh": "受理下一件", "en": "Next intake"},
    "ui.cases.intake.rongque": {"zh": "容缺受理", "en": "Accepted, materials to follow"},
    # list
    "ui.cases.list.title": {"zh": "办件查询", "en": "Cases"},
    "ui.cases.list.all_states": {"zh": "全部状态", "en": "All states"},
    "ui.cases.list.all_depts": {"zh": "全部部门", "en": "All departments"},
    "ui.cases.list.date": {"zh": "收件日期", "en": "Date"},
    "ui.cases.list.q": {"zh": "办件编码 / 事项名称", "en": "Case number / item"},
    "ui.cases.list.filter": {"zh": "查询", "en": "Filter"},
    "ui.cases.list.reset": {"zh": "重置", "en": "Reset"},
    "ui.cases.list.empty": {"zh": "没有符合条件的办件", "en": "No case matches"},
    "ui.cases.list.count": {"zh": "共 {n} 件", "en": "{n} case(s)"},
    # inbox
    "ui.cases.inbox.title": {"zh": "审查待办", "en": "Review inbox"},
    "ui.cases.inbox.dept": {"zh": "审查部门", "en": "Department"},
    "ui.cases.inbox.show": {"zh": "显示", "en": "Show"},
    "ui.cases.inbox.open": {"zh": "待处理", "en": "Open"},
    "ui.cases.inbox.all": {"zh": "全部", "en": "All"},
    "ui.cases.inbox.empty": {"zh": "暂无待审查的办件", "en": "Nothing to review"},
    "ui.cases.inbox.task": {"zh": "本部门", "en": "This department"},
    "ui.cases.inbox.progress": {"zh": "并联审查进度", "en": "Parallel review"},
    "ui.cases.inbox.legend": {
        "zh": "时限按工作日计算：剩余不超过 {n} 个工作日为预警（黄），超过承诺日期为超期（红）。",
        "en": "Working days: yellow when {n} or fewer remain, red after the promised date.",
    },
    # detail
    "ui.cases.detail.tasks": {"zh": "并联审查", "en": "Parallel review"},
    "ui.cases.detail.materials": {"zh": "申请材料", "en": "Materials"},
    "ui.cases.detail.timeline": {"zh": "办理过程", "en": "Timeline"},
    "ui.cases.detail.actions": {"zh": "窗口操作", "en": "Window actions"},
    "ui.cases.detail.decided_by": {"zh": "{by} · {at}", "en": "{by} · {at}"},
    "ui.cases.detail.decide": {"zh": "审查意见", "en": "Your decision"},
    "ui.cases.detail.decide_for": {"zh": "{dept} 审查意见", "en": "Decision of {dept}"},
    "ui.cases.detail.reason": {"zh": "审查意见 / 理由", "en": "Opinion / reason"},
    "ui.cases.detail.reason_ph": {
        "zh": "通过时可不填；不予许可或要求补正时必须填写理由",
        "en": "Optional to approve; required to reject or ask for more",
    },
    "ui.cases.detail.approve": {"zh": "审核通过", "en": "Approve"},
    "ui.cases.detail.reject": {"zh": "不予许可", "en": "Reject"},
    "ui.cases.detail.supplement": {"zh": "要求补正", "en": "Ask for more"},
    "ui.cases.detail.sup_materials": {
        "zh": "需补正的材料（要求补正时勾选）",
        "en": "Materials to bring again (for a supplement request)",
    },
    "ui.cases.detail.need_reason": {"zh": "请填写理由", "en": "Please give a reason"},
    "ui.cases.detail.confirm_reject": {
        "zh": "确认对办件 {no} 作出不予许可决定？该决定将终止其他部门的审查。",
        "en": "Reject case {no}? The other departments' reviews stop.",
    },
    "ui.cases.detail.decided_ok": {"zh": "审查意见已提交", "en": "Decision recorded"},
    "ui.cases.detail.not_yours": {
        "zh": "由{dept}审核人员作出审查意见",
        "en": "Only reviewers of {dept} decide here",
    },
    "ui.cases.detail.no_tasks": {
        "zh": "办件受理后开始并联审查",
        "en": "Reviews start on acceptance",
    },
    "ui.cases.detail.result": {
        "zh": "结果已到窗口（统一出件）",
        "en": "Result ready at the window",
    },
    "ui.cases.detail.result_hint": {
        "zh": "审批结果送达统一出件窗口后点击，系统短信通知申请人领取。",
        "en": "Press when the result reaches the results window: the applicant gets an SMS.",
    },
    "ui.cases.detail.handover": {"zh": "出件", "en": "Hand over"},
    "ui.cases.detail.pickup": {"zh": "窗口领取", "en": "Picked up"},
    "ui.cases.detail.mail": {"zh": "邮寄送达", "en": "Mailed"},
    "ui.cases.detail.tracking": {"zh": "邮件运单号", "en": "Tracking number"},
    "ui.cases.detail.ticket_opt": {
        "zh": "本次到场号票（可选）",
        "en": "Ticket of this visit (optional)",
    },
    "ui.cases.detail.no_ticket": {"zh": "不关联号票", "en": "No ticket"},
    "ui.cases.detail.bring": {"zh": "补交材料", "en": "Materials brought"},
    "ui.cases.detail.bring_hint": {
        "zh": "勾选申请人本次带来的材料",
        "en": "Tick what the applicant brought",
    },
    "ui.cases.detail.bring_submit": {"zh": "登记补交材料", "en": "Record the materials"},
    "ui.cases.detail.identity": {"zh": "核验完整身份信息", "en": "Show full identity"},
    "ui.cases.detail.identity_note": {"zh": "查看将记入办件日志", "en": "Viewing is logged"},
    "ui.cases.detail.reject_reason": {"zh": "不予许可理由", "en": "Reason for rejection"},
    "ui.cases.detail.rongque": {
        "zh": "容缺受理，补交期限 {date}",
        "en": "Accepted, materials due {date}",
    },
    "ui.cases.detail.handover_done": {"zh": "{how}（{at}）", "en": "{how} ({at})"},
    "ui.cases.detail.nothing": {"zh": "当前无需窗口操作", "en": "Nothing to do at the window"},
    "ui.cases.detail.tl_empty": {"zh": "暂无记录", "en": "No events"},
    # overview
    "ui.cases.ov.title": {"zh": "办件总览", "en": "Case overview"},
    "ui.cases.ov.total": {"zh": "办件总数", "en": "Cases"},
    "ui.cases.ov.open": {"zh": "在办", "en": "Open"},
    "ui.cases.ov.yellow": {"zh": "临期预警", "en": "Due soon"},
    "ui.cases.ov.red": {"zh": "超期", "en": "Overdue"},
    "ui.cases.ov.one_visit": {"zh": "“最多跑一次”占比", "en": "At most one visit"},
    "ui.cases.ov.by_state": {"zh": "办件状态", "en": "By status"},
    "ui.cases.ov.deadlines": {"zh": "在办时限", "en": "Open cases by deadline"},
    "ui.cases.ov.overdue": {"zh": "超期办件", "en": "Overdue cases"},
    "ui.cases.ov.no_overdue": {"zh": "没有超期办件", "en": "No overdue case"},
    "ui.cases.ov.pending_depts": {"zh": "待审部门", "en": "Waiting for"},
    "ui.cases.ov.statutory_over": {"zh": "已超法定时限", "en": "past the statutory limit"},
    "ui.cases.ov.ratings": {"zh": "好差评", "en": "Ratings (好差评)"},
    "ui.cases.ov.avg": {"zh": "平均 {n} 分", "en": "average {n}"},
    "ui.cases.ov.satisfied": {"zh": "满意率", "en": "Satisfied"},
    "ui.cases.ov.no_ratings": {"zh": "暂无评价", "en": "No ratings yet"},
    "ui.cases.ov.rated": {
        "zh": "共 {n} 条评价（窗口服务 {v}，办件 {c}）",
        "en": "{n} ratings ({v} visits, {c} cases)",
    },
    "ui.cases.ov.visits": {"zh": "跑动情况", "en": "Visits"},
    "ui.cases.ov.completed": {"zh": "已办结办件", "en": "Completed cases"},
    "ui.cases.ov.at_most_one": {"zh": "其中最多跑一次", "en": "With at most one visit"},
    "ui.cases.ov.avg_visits": {"zh": "平均跑动次数", "en": "Average visits"},
    "ui.cases.ov.total_visits": {"zh": "累计到场次数", "en": "Visits recorded"},
    "ui.cases.ov.followups": {"zh": "差评回访整改", "en": "Follow-ups of bad ratings"},
    "ui.cases.ov.no_followups": {"zh": "没有待回访的差评", "en": "No open follow-up"},
    "ui.cases.ov.due": {"zh": "回访期限", "en": "Due"},
    "ui.cases.ov.about": {"zh": "对象", "en": "About"},
    "ui.cases.ov.comment": {"zh": "评价内容", "en": "Comment"},
    "ui.cases.ov.close": {"zh": "办结", "en": "Close"},
    "ui.cases.ov.note_ph": {"zh": "回访及整改情况", "en": "What was done"},
    "ui.cases.ov.followups_open": {
        "zh": "待回访 {n} 件，逾期 {o} 件",
        "en": "{n} open, {o} overdue",
    },
    "ui.cases.ov.date": {"zh": "统计日期 {d}", "en": "As of {d}"},
    "ui.cases.ov.ticket": {"zh": "号票 {no}", "en": "Ticket {no}"},
    # timeline
    "ui.cases.tl.case.opened": {"zh": "窗口收件，生成办件", "en": "Case opened at the window"},
    "ui.cases.tl.case.opened.d": {
        "zh": "号票 {ticket}；收取材料 {got} 项，缺 {miss} 项",
        "en": "ticket {ticket}; {got} material(s) received, {miss} missing",
    },
    "ui.cases.tl.case.visit": {
        "zh": "申请人第 {n} 次到场：{purpose}",
        "en": "Visit {n}: {purpose}",
    },
    "ui.cases.tl.purpose.intake": {"zh": "递交申请", "en": "application"},
    "ui.cases.tl.purpose.supplement": {"zh": "补交材料", "en": "bringing materials"},
    "ui.cases.tl.purpose.pickup": {"zh": "领取结果", "en": "collecting the result"},
    "ui.cases.tl.case.accepted": {"zh": "正式受理，开始计时", "en": "Accepted: the clock starts"},
    "ui.cases.tl.case.accepted.d": {
        "zh": "承诺办结 {promised}，法定时限 {statutory}",
        "en": "promised by {promised}, statutory limit {statutory}",
    },
    "ui.cases.tl.rongque": {
        "zh": "容缺受理，补交期限 {date}",
        "en": "materials to follow by {date}",
    },
    "ui.cases.tl.case.notice_issued": {
        "zh": "出具一次性告知书（{n} 项材料）",
        "en": "One-time notice issued ({n} material(s))",
    },
    "ui.cases.tl.notice.supplement": {
        "zh": "出具补正告知书（{n} 项材料）",
        "en": "Supplement notice issued ({n} material(s))",
    },
    "ui.cases.tl.review.opened": {
        "zh": "{dept}开始审查（{role}）",
        "en": "{dept} starts its review ({role})",
    },
    "ui.cases.tl.review.decided.approve": {"zh": "{dept}审查通过", "en": "{dept} approves"},
    "ui.cases.tl.review.decided.reject": {"zh": "{dept}作出不予许可决定", "en": "{dept} rejects"},
    "ui.cases.tl.review.decided.supplement": {"zh": "{dept}要求补正", "en": "{dept} asks for more"},
    "ui.cases.tl.review.cancelled": {"zh": "{dept}审查终止", "en": "{dept}'s review is cancelled"},
    "ui.cases.tl.review.reopened": {"zh": "{dept}恢复审查", "en": "{dept} resumes its review"},
    "ui.cases.tl.case.supplement_requested": {
        "zh": "办件转入补正，办理时限暂停",
        "en": "Supplement requested: the clock is paused",
    },
    "ui.cases.tl.case.supplemented": {"zh": "补交材料 {n} 项", "en": "{n} material(s) brought"},
    "ui.cases.tl.supplemented.d": {
        "zh": "时限顺延 {n} 个工作日，承诺办结 {promised}",
        "en": "extended by {n} working days, promised by {promised}",
    },
    "ui.cases.tl.case.approved": {"zh": "审批通过", "en": "Approved"},
    "ui.cases.tl.case.rejected": {"zh": "不予许可", "en": "Rejected"},
    "ui.cases.tl.case.result_ready": {
        "zh": "结果送达统一出件窗口",
        "en": "Result at the results window",
    },
    "ui.cases.tl.case.handed_over.pickup": {
        "zh": "申请人窗口领取结果，办件完结",
        "en": "Result picked up: case complete",
    },
    "ui.cases.tl.case.handed_over.mail": {
        "zh": "结果已邮寄送达（运单号 {tracking}），办件完结",
        "en": "Result mailed (tracking {tracking}): case complete",
    },
    "ui.cases.tl.case.file_attached": {
        "zh": "上传材料扫描件：{material}",
        "en": "Scan attached: {material}",
    },
    "ui.cases.tl.case.identity_viewed": {
        "zh": "{by} 查看了完整身份信息",
        "en": "{by} viewed the full identity",
    },
    "ui.cases.tl.preapplication.used": {
        "zh": "关联网上预审申请",
        "en": "Online pre-application used",
    },
    "ui.cases.tl.sms.queued": {"zh": "短信通知：{what}", "en": "SMS: {what}"},
    "ui.cases.tl.sms.sent": {"zh": "短信已发送", "en": "SMS sent"},
    "ui.cases.tl.sms.failed": {"zh": "短信发送失败", "en": "SMS failed"},
    "ui.cases.tl.sms.accepted": {"zh": "受理通知", "en": "accepted"},
    "ui.cases.tl.sms.supplement": {"zh": "补正通知", "en": "supplement needed"},
    "ui.cases.tl.sms.result_ready": {"zh": "领取通知", "en": "result ready"},
    "ui.cases.tl.sms.mailed": {"zh": "邮寄通知", "en": "mailed"},
    "ui.cases.tl.rating.given": {"zh": "申请人评价：{level}", "en": "Rated: {level}"},
    "ui.cases.tl.followup.opened": {
        "zh": "差评回访工单，期限 {due}",
        "en": "Follow-up opened, due {due}",
    },
    "ui.cases.tl.followup.closed": {"zh": "差评回访已办结", "en": "Follow-up closed"},
}
i18n.add(STRINGS)

_t = i18n.t


# --------------------------------------------------------------------------- helpers


def _lang(request: web.Request) -> str:
    return page_lang(request)[0]


def _today(request: web.Request) -> str:
    app = request.app
    return local_date(app[CLOCK](), app[CONFIG].timezone).isoformat()


def _pick(obj: dict[str, Any] | None, lang: str, field: str = "name") -> str:
    if not obj:
        return ""
    if lang == "en" and obj.get(f"{field}_en"):
        return str(obj[f"{field}_en"])
    return str(obj.get(f"{field}_zh") or obj.get(field) or obj.get("code") or "")


def _departments(db: Any) -> list[dict[str, Any]]:
    return dbm.rows(db, "SELECT code, name_zh, name_en FROM departments ORDER BY sort, code")


def _dept_names(db: Any, lang: str) -> dict[str, str]:
    return {d["code"]: _pick(d, lang) for d in _departments(db)}


def _local(request: web.Request, value: str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if not value:
        return ""
    return to_local(value, request.app[CONFIG].timezone).strftime(fmt)


def size_label(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def deadline_view(dl: dict[str, Any] | None, lang: str) -> dict[str, str]:
    """The colour (green/yellow/red/paused/done/none) and a short text of a deadline."""
    if not dl:
        return {"status": "none", "label": "", "text": _t("ui.cases.not_started", lang)}
    if dl.get("paused"):
        return {
            "status": "paused",
            "label": _t("ui.cases.status.paused", lang),
            "text": _t("ui.cases.paused_since", lang, date=dl["as_of"]),
        }
    status = dl.get("status")
    if status is None:
        key = "ui.cases.on_time" if dl.get("on_time") else "ui.cases.late"
        return {"status": "done", "label": _t("ui.cases.status.done", lang), "text": _t(key, lang)}
    if status == "red":
        text = _t("ui.cases.overdue_n", lang, n=dl["overdue_workdays"])
    elif dl["workdays_left"] == 0:
        text = _t("ui.cases.due_today", lang)
    else:
        text = _t("ui.cases.left_n", lang, n=dl["workdays_left"])
    return {"status": str(status), "label": _t(f"ui.cases.status.{status}", lang), "text": text}


def _desk_tickets(request: web.Request, user: dict[str, Any]) -> list[dict[str, Any]]:
    """Today's tickets called or suspended at the user's window (every window for admins)."""
    db = request.app[DB]
    lang = _lang(request)
    sql = (
        "SELECT t.*, w.number AS window_number FROM tickets t "
        "LEFT JOIN windows w ON w.id = t.window_id "
        "WHERE t.state IN ('called', 'suspended') AND t.service_date = ?"
    )
    params: list[Any] = [_today(request)]
    if user["role"] == "window" and user.get("window_id") is not None:
        sql += " AND t.window_id = ?"
        params.append(user["window_id"])
    sql += " ORDER BY t.state = 'called' DESC, t.called_at DESC"
    queues = {q["code"]: q for q in dbm.rows(db, "SELECT code, name_zh, name_en FROM queues")}
    out = []
    for row in dbm.rows(db, sql, params):
        t = tickets.public(row)
        t["window_number"] = row["window_number"]
        t["queue_name"] = _pick(queues.get(row["queue"]), lang) or row["queue"]
        out.append(t)
    return out


async def _base_ctx(request: web.Request, user: dict[str, Any], tab: str) -> dict[str, Any]:
    return {
        "user": user,
        "tab": tab,
        "csrf_token": await auth.csrf_token(request),
        "today": _today(request),
    }


def _js_data(lang: str, **extra: Any) -> dict[str, Any]:
    return {"lang": lang, "strings": js_strings(lang, "ui.cases."), **extra}


async def _error_page(request: web.Request, status: int, message: str) -> web.Response:
    user = await auth.current_user(request)
    ctx: dict[str, Any] = {"status": status, "message": message, "tab": ""}
    if user is not None:
        ctx.update(await _base_ctx(request, user, ""))
    return await render(request, "cases/error.html", ctx, status=status)


def page(*roles: str) -> Callable[[Handler], Handler]:
    """A staff page for ``roles``: login first, a styled error page for refusals."""

    def wrap(fn: Handler) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            user = await auth.require(request)
            lang = _lang(request)
            if user["role"] not in roles:
                role = _t(f"ui.role.{user['role']}", lang)
                return await _error_page(request, 403, _t("ui.cases.err.role", lang, role=role))
            request["user"] = user
            try:
                return await fn(request)
            except ApiError as exc:
                return await _error_page(request, exc.status, exc.message)

        handler.__name__ = fn.__name__
        handler.__doc__ = fn.__doc__
        return handler

    return wrap


# --------------------------------------------------------------------------- intake


def _catalog(db: Any, lang: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Catalog items grouped by lead department, and the items for the page script."""
    depts = _departments(db)
    names = {d["code"]: _pick(d, lang) for d in depts}
    items = dbm.rows(
        db,
        "SELECT code, name_zh, name_en, kind, departments, materials, promised_days, "
        "statutory_days FROM items ORDER BY sort, code",
    )
    by_dept: dict[str, list[dict[str, Any]]] = {}
    for it in items:
        it["departments"] = json.loads(it["departments"])
        it["materials"] = json.loads(it["materials"])
        it["dept_names"] = [names.get(d, d) for d in it["departments"]]
        lead = it["departments"][0] if it["departments"] else ""
        by_dept.setdefault(lead, []).append(it)
    groups = [
        {"code": d["code"], "name": names[d["code"]], "items": by_dept[d["code"]]}
        for d in depts
        if d["code"] in by_dept
    ]
    return groups, items


@page(*WINDOW)
async def intake_page(request: web.Request) -> web.StreamResponse:
    """``/cases/new?ticket={id}``: open a case from the ticket being served."""
    user = request["user"]
    app = request.app
    db = app[DB]
    lang = _lang(request)
    desk = _desk_tickets(request, user)
    warning = None
    selected: int | None = None
    raw = request.query.get("ticket", "").strip()
    if raw:
        try:
            wanted = int(raw)
        except ValueError:
            wanted = -1
        if any(t["id"] == wanted for t in desk):
            selected = wanted
        else:
            row = dbm.one(db, "SELECT ticket_no FROM tickets WHERE id = ?", [wanted])
            warning = _t("ui.cases.intake.ticket_gone", lang, no=row["ticket_no"] if row else raw)
    elif len([t for t in desk if t["state"] == "called"]) == 1:
        selected = next(t["id"] for t in desk if t["state"] == "called")
    groups, items = _catalog(db, lang)
    preselect: list[str] = []
    ticket = next((t for t in desk if t["id"] == selected), None)
    if ticket and ticket.get("item_code"):
        preselect = [ticket["item_code"]]
    data = _js_data(
        lang,
        tickets=desk,
        items={
            it["code"]: {
                k: it[k]
                for k in (
                    "code",
                    "name_zh",
                    "name_en",
                    "kind",
                    "departments",
                    "dept_names",
                    "materials",
                    "promised_days",
                    "statutory_days",
                )
            }
            for it in items
        },
        preselect=preselect,
        today=_today(request),
    )
    ctx = await _base_ctx(request, user, "intake")
    ctx.update(
        {
            "tickets": desk,
            "selected_ticket": selected,
            "warning": warning,
            "groups": groups,
            "preselect": preselect,
            "data": data,
        }
    )
    return await render(request, "cases/intake.html", ctx)


# --------------------------------------------------------------------------- list


@page(*STAFF)
async def cases_list(request: web.Request) -> web.StreamResponse:
    """``/cases``: cases newest first, filtered by state, date, department and text."""
    user = request["user"]
    app = request.app
    db, cfg = app[DB], app[CONFIG]
    lang = _lang(request)
    q = request.query
    state = q.get("state") or ""
    if state not in common.STATE_NAMES:
        state = ""
    date = q.get("date") or ""
    department = q.get("department") or ""
    if user["role"] == "reviewer":
        department = user.get("department") or "-"
    text = (q.get("q") or "").strip()
    if text and common.CASE_NO_RE.match(text):
        if dbm.one(db, "SELECT 1 AS x FROM cases WHERE case_no = ?", [text]):
            raise web.HTTPFound(f"/cases/{text}")
    try:
        rows = queries.list_cases(
            db,
            cfg,
            state=state or None,
            date=date or None,
            department=department or None,
            limit=1000 if text else 300,
            now=app[CLOCK],
        )
    except ApiError:
        rows = []
    names = _dept_names(db, lang)
    item_names = {r["code"]: r for r in dbm.rows(db, "SELECT code, name_zh, name_en FROM items")}
    out = []
    for r in rows:
        its = [item_names.get(c) or {"code": c, "name_zh": c} for c in r["items"]]
        label = " / ".join(_pick(it, lang) for it in its)
        haystack = " ".join(
            [r["case_no"], *(f"{it['code']} {it.get('name_zh')} {it.get('name_en')}" for it in its)]
        )
        if text and text.lower() not in haystack.lower():
            continue
        r["item_label"] = label
        r["dept_label"] = "、".join(names.get(d, d) for d in r["departments"])
        r["dl"] = deadline_view(r["deadline"], lang)
        r["created_local"] = _local(request, r["created_at"])
        out.append(r)
    ctx = await _base_ctx(request, user, "list")
    ctx.update(
        {
            "rows": out,
            "states": list(common.STATE_NAMES),
            "departments": _departments(db),
            "f": {"state": state, "date": date, "department": department, "q": text},
            "data": _js_data(lang),
        }
    )
    return await render(request, "cases/list.html", ctx)


# --------------------------------------------------------------------------- inbox


@page("admin", "reviewer")
async def inbox_page(request: web.Request) -> web.StreamResponse:
    """``/inbox``: a department's review tasks, most urgent first."""
    user = request["user"]
    app = request.app
    db, cfg = app[DB], app[CONFIG]
    lang = _lang(request)
    depts = _departments(db)
    open_counts = {
        r["department"]: r["n"]
        for r in dbm.rows(
            db,
            "SELECT department, COUNT(*) AS n FROM review_tasks "
            "WHERE state IN ('pending', 'supplement') GROUP BY department",
        )
    }
    if user["role"] == "reviewer":
        department = user.get("department") or ""
        if not department:
            return await _error_page(request, 403, _t("ui.cases.err.no_dept", lang))
    else:
        department = request.query.get("department") or ""
        if department not in {d["code"] for d in depts}:
            busiest = sorted(open_counts.items(), key=lambda kv: -kv[1])
            department = busiest[0][0] if busiest else (depts[0]["code"] if depts else "")
    show = request.query.get("show") or "open"
    if show not in ("open", "all"):
        show = "open"
    rows = queries.inbox(db, cfg, department, show, app[CLOCK]) if department else []
    names = {d["code"]: _pick(d, lang) for d in depts}
    for r in rows:
        r["dl"] = deadline_view(r["deadline"], lang)
        if r["state"] not in ("pending", "supplement"):
            r["dl"] = dict(r["dl"], status="done", label=_t(f"ui.cases.task.{r['state']}", lang))
        r["item_label"] = " / ".join(_pick(it, lang) for it in r["items"])
        r["progress"] = [
            {
                "department": t["department"],
                "name": names.get(t["department"], t["department"]),
                "state": t["state"],
            }
            for t in r["tasks"]
        ]
    counts = {
        s: sum(1 for r in rows if r["dl"]["status"] == s)
        for s in ("red", "yellow", "green", "paused")
    }
    ctx = await _base_ctx(request, user, "inbox")
    ctx.update(
        {
            "department": department,
            "department_name": names.get(department, department),
            "departments": [dict(d, open=open_counts.get(d["code"], 0)) for d in depts],
            "rows": rows,
            "counts": counts,
            "show": show,
            "warn_workdays": workdays.WARN_WORKDAYS,
            "data": _js_data(lang),
        }
    )
    return await render(request, "cases/inbox.html", ctx)


# --------------------------------------------------------------------------- detail


def describe(
    ev: dict[str, Any], lang: str, depts: dict[str, str], mats: dict[str, str]
) -> dict[str, str]:
    """A timeline event as a readable title, detail and tone (ok/warn/bad/info/muted)."""
    kind, b = ev["kind"], ev["body"]

    def t(key: str, **fmt: Any) -> str:
        return _t(key, lang, **fmt)

    def dept() -> str:
        return depts.get(b.get("department", ""), b.get("department", ""))

    def names(codes: list[Any]) -> str:
        sep = "; " if lang == "en" else "、"
        return sep.join(mats.get(str(c), str(c)) for c in codes)

    title, detail, tone = kind, "", "info"
    by = b.get("by") or ""
    if kind == "case.opened":
        title = t("ui.cases.tl.case.opened")
        detail = t(
            "ui.cases.tl.case.opened.d",
            ticket=b.get("ticket_no") or "—",
            got=len(b.get("received") or []),
            miss=len(b.get("missing") or []),
        )
    elif kind == "case.visit":
        purpose = t(f"ui.cases.tl.purpose.{b.get('purpose')}")
        title = t("ui.cases.tl.case.visit", n=b.get("visits"), purpose=purpose)
        detail = t("ui.cases.ov.ticket", no=b["ticket_no"]) if b.get("ticket_no") else ""
    elif kind == "case.accepted":
        title, tone = t("ui.cases.tl.case.accepted"), "ok"
        detail = t(
            "ui.cases.tl.case.accepted.d",
            promised=b.get("promised_deadline"),
            statutory=b.get("statutory_deadline"),
        )
        if b.get("commitment"):
            detail += ("; " if lang == "en" else "；") + t(
                "ui.cases.tl.rongque", date=b.get("catch_up_date")
            )
    elif kind == "case.notice_issued":
        n = len(b.get("missing") or [])
        key = (
            "ui.cases.tl.notice.supplement"
            if b.get("reason") == "supplement"
            else "ui.cases.tl.case.notice_issued"
        )
        title, tone = t(key, n=n), "warn"
        detail = names([m.get("code") for m in b.get("missing") or []])
    elif kind == "review.opened":
        role = t("ui.cases.lead") if b.get("lead") else t("ui.cases.co")
        title = t("ui.cases.tl.review.opened", dept=dept(), role=role)
    elif kind == "review.decided":
        decision = b.get("decision", "")
        title = t(f"ui.cases.tl.review.decided.{decision}", dept=dept())
        tone = {"approve": "ok", "reject": "bad", "supplement": "warn"}.get(decision, "info")
        detail = b.get("reason") or ""
    elif kind in ("review.cancelled", "review.reopened"):
        title, tone = t(f"ui.cases.tl.{kind}", dept=dept()), "muted"
    elif kind == "case.supplement_requested":
        title, tone = t("ui.cases.tl.case.supplement_requested"), "warn"
        detail = (
            dept()
            + ("：" if lang == "zh" else ": ")
            + (b.get("reason") or "")
            + (" — " + names(b["materials"]) if b.get("materials") else "")
        )
    elif kind == "case.supplemented":
        title = t("ui.cases.tl.case.supplemented", n=len(b.get("received") or []))
        detail = names(b.get("received") or [])
        if b.get("paused_workdays") is not None:
            detail += ("; " if lang == "en" else "；") + t(
                "ui.cases.tl.supplemented.d",
                n=b["paused_workdays"],
                promised=b.get("promised_deadline"),
            )
        tone = "ok"
    elif kind == "case.approved":
        title, tone = t("ui.cases.tl.case.approved"), "ok"
        detail = t("ui.cases.on_time") if b.get("on_time") else t("ui.cases.late")
    elif kind == "case.rejected":
        title, tone = t("ui.cases.tl.case.rejected"), "bad"
        detail = dept() + ("：" if lang == "zh" else ": ") + (b.get("reason") or "")
    elif kind == "case.result_ready":
        title, tone = t("ui.cases.tl.case.result_ready"), "ok"
    elif kind == "case.handed_over":
        method = b.get("method", "pickup")
        title = t(f"ui.cases.tl.case.handed_over.{method}", tracking=b.get("tracking") or "")
        tone = "ok"
        detail = t("ui.cases.ov.ticket", no=b["ticket_no"]) if b.get("ticket_no") else ""
    elif kind == "case.file_attached":
        title = t("ui.cases.tl.case.file_attached", material=names([b.get("material")]))
        detail = size_label(int(b.get("size") or 0))
        tone = "muted"
    elif kind == "case.identity_viewed":
        title, tone, by = t("ui.cases.tl.case.identity_viewed", by=by), "muted", ""
    elif kind == "preapplication.used":
        title = t("ui.cases.tl.preapplication.used")
    elif kind == "sms.queued":
        what = t(f"ui.cases.tl.sms.{b.get('template')}")
        if what.startswith("ui."):
            what = str(b.get("template"))
        title, tone = t("ui.cases.tl.sms.queued", what=what), "muted"
        detail = b.get("to_masked") or ""
    elif kind in ("sms.sent", "sms.failed"):
        title, tone = t(f"ui.cases.tl.{kind}"), "muted" if kind == "sms.sent" else "bad"
    elif kind == "rating.given":
        level = ratings.LEVELS.get(int(b.get("level") or 0), ("", ""))
        title = t("ui.cases.tl.rating.given", level=level[1] if lang == "en" else level[0])
        tone = "bad" if b.get("level") in ratings.BAD_LEVELS else "ok"
        detail = b.get("comment") or ""
    elif kind == "followup.opened":
        title, tone = t("ui.cases.tl.followup.opened", due=b.get("due_date")), "warn"
    elif kind == "followup.closed":
        title, tone = t("ui.cases.tl.followup.closed"), "ok"
        detail = b.get("note") or ""
    return {"title": title, "detail": detail, "tone": tone, "by": by}


@page(*STAFF)
async def case_page(request: web.Request) -> web.StreamResponse:
    """``/cases/{case_no}``: everything about one case, and what the user may do with it."""
    user = request["user"]
    app = request.app
    db, cfg = app[DB], app[CONFIG]
    lang = _lang(request)
    case_no = request.match_info["case_no"]
    try:
        row = common.get(db, case_no)
    except NotFound:
        return await _error_page(request, 404, _t("ui.cases.err.no_case", lang, case_no=case_no))
    if user["role"] == "reviewer" and user.get("department") not in row["departments"]:
        dept = _dept_names(db, lang).get(user.get("department") or "", user.get("department"))
        return await _error_page(
            request, 403, _t("ui.cases.err.not_visible", lang, case_no=case_no, dept=dept or "—")
        )
    c = queries.detail(db, cfg, row, app[CLOCK])
    depts = _dept_names(db, lang)
    mats = {m["code"]: _pick(m, lang) for m in c["materials"]}
    timeline = []
    for ev in reversed(c["timeline"]):
        d = describe(ev, lang, depts, mats)
        d["at"] = _local(request, ev["at"], "%m-%d %H:%M")
        d["at_full"] = _local(request, ev["at"], "%Y-%m-%d %H:%M:%S")
        d["kind"] = ev["kind"]
        timeline.append(d)
    is_window = user["role"] in WINDOW
    role = user["role"]
    for task in c["tasks"]:
        task["name"] = depts.get(task["department"], task["department"])
        task["mine"] = role == "admin" or (
            role == "reviewer" and user.get("department") == task["department"]
        )
        task["can_decide"] = (
            task["mine"] and task["state"] == "pending" and c["state"] == "accepted"
        )
        task["decided_local"] = _local(request, task["decided_at"])
    outstanding = [m for m in c["materials"] if m["state"] != "received"]
    has_notice = any(ev["kind"] == "case.notice_issued" for ev in c["timeline"])
    actions = {
        "result": is_window
        and c["state"] in ("approved", "rejected")
        and not (c["outcome"] == "approved" and outstanding),
        "handover": is_window and c["state"] == "result_ready",
        "supplement": is_window
        and bool(outstanding)
        and c["state"] in ("pending_materials", "supplement", "accepted", "approved"),
        "identity": is_window,
    }
    for m in c["materials"]:
        for f in m["files"]:
            f["size_label"] = size_label(f["size"])
    data = _js_data(
        lang,
        case_no=c["case_no"],
        state=c["state"],
        materials=[
            {k: m[k] for k in ("code", "name_zh", "name_en", "critical", "state")}
            for m in c["materials"]
        ],
    )
    ctx = await _base_ctx(request, user, "list" if role != "reviewer" else "inbox")
    ctx.update(
        {
            "c": c,
            "dl": deadline_view(c["deadline"], lang),
            "dept_names": depts,
            "timeline": timeline,
            "actions": actions,
            "outstanding": outstanding,
            "has_notice": has_notice,
            "desk": _desk_tickets(request, user) if is_window else [],
            "created_local": _local(request, c["created_at"]),
            "handed_local": _local(request, c["handed_over_at"]),
            "is_window": is_window,
            "my_pending": [t for t in c["tasks"] if t["can_decide"]],
            "data": data,
        }
    )
    return await render(request, "cases/detail.html", ctx)


# --------------------------------------------------------------------------- overview


@page("admin")
async def overview_page(request: web.Request) -> web.StreamResponse:
    """``/overview``: counts, deadlines, overdue cases, visits, ratings and follow-ups."""
    user = request["user"]
    app = request.app
    db, cfg = app[DB], app[CONFIG]
    lang = _lang(request)
    ov = queries.overview(db, cfg, app[CLOCK])
    depts = _dept_names(db, lang)
    item_names = {r["code"]: r for r in dbm.rows(db, "SELECT code, name_zh, name_en FROM items")}
    for o in ov["overdue"]:
        o["item_label"] = " / ".join(_pick(item_names.get(c), lang) or c for c in o["items"])
        o["pending_label"] = "、".join(depts.get(d, d) for d in o["pending_departments"])
    followups = ratings.list_followups(db, cfg, "open", app[CLOCK])
    by_state = ov["cases"]["by_state"]
    state_max = max([1, *by_state.values()])
    r = ov["ratings"]
    level_max = max([1, *r["by_level"].values()])
    dls = ov["deadlines"]
    dl_max = max(1, dls["green"], dls["yellow"], dls["red"])
    ctx = await _base_ctx(request, user, "overview")
    ctx.update(
        {
            "ov": ov,
            "by_state": by_state,
            "state_max": state_max,
            "levels": [
                (lv, ratings.LEVELS[lv], r["by_level"][str(lv)])
                for lv in sorted(ratings.LEVELS, reverse=True)
            ],
            "level_max": level_max,
            "dl_max": dl_max,
            "followups": followups,
            "open_cases": by_state.get("accepted", 0) + by_state.get("supplement", 0),
            "data": _js_data(lang),
        }
    )
    return await render(request, "cases/overview.html", ctx)


def setup_case_pages(app: web.Application) -> None:
    r = app.router
    r.add_get("/cases", cases_list, name="cases_list_page")
    r.add_get("/cases/new", intake_page, name="case_intake_page")
    r.add_get(r"/cases/{case_no:\d{2,12}-\d{8}-\d{4,}}", case_page, name="case_detail_page")
    r.add_get("/inbox", inbox_page, name="cases_inbox_page")
    r.add_get("/overview", overview_page, name="cases_overview_page")
