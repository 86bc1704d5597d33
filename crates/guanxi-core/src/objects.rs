//! The built-in object catalogue: the standard objects declared in code. Each declaration here
//! has a matching table in both migration folders; `guanxi-store` checks at start-up that every
//! standard field has its column.

use crate::i18n::Label;
use crate::meta::{DatePart, FieldDef, FieldType, NumberingRule, ObjectDef};
use crate::state::{StateDef, StateMachine, Transition};

fn text(n: u32) -> FieldType {
    FieldType::Text { max_len: n }
}

fn select(dict: &str) -> FieldType {
    FieldType::Select { dict: dict.into() }
}

fn relation(object: &str) -> FieldType {
    FieldType::Relation { object: object.into() }
}

/// Every standard object, in menu order.
pub fn builtin_objects() -> Vec<ObjectDef> {
    vec![
        department().in_module("system"),
        user().in_module("system"),
        role().in_module("system"),
        customer().in_module("customers"),
        contact().in_module("customers"),
        lead().in_module("customers"),
        follow_up().in_module("customers"),
        care_action().in_module("customers"),
        customer_group().in_module("customers"),
    ]
}

/// Departments form the organisation tree (HQ → branch → office → team) that data scopes use.
pub fn department() -> ObjectDef {
    ObjectDef::new(
        "department",
        "departments",
        "部门",
        "Department",
        vec![
            FieldDef::new("name", "部门名称", "Name", text(100)).required(),
            FieldDef::new("code", "部门编码", "Code", text(32)).unique(),
            FieldDef::new("parent_id", "上级部门", "Parent department", relation("department")),
            FieldDef::new("manager_name", "负责人姓名", "Manager", text(50)),
            FieldDef::new(
                "is_external",
                "外部合作单位",
                "External partner organisation",
                FieldType::Boolean,
            ),
            FieldDef::new(
                "sort_order",
                "排序",
                "Sort order",
                FieldType::Integer {
                    min: Some(0),
                    max: Some(99_999),
                },
            ),
            FieldDef::new("remark", "备注", "Remark", FieldType::LongText { max_len: 2000 }),
        ],
    )
    .title("name")
    .search(&["name", "code"])
    .sorted_by(&["sort_order", "name"])
}

/// A user account (seed 000 §2.2, PRODUCT.md module 1). Secrets (password hash and history,
/// second-factor secrets) are columns of the table but not fields: the engine never selects
/// them, so no list, export or history can show them.
pub fn user() -> ObjectDef {
    let read_only = |key: &str, zh: &str, en: &str, t: FieldType| FieldDef::new(key, zh, en, t).read_only();
    ObjectDef::new(
        "user",
        "users",
        "用户",
        "User",
        vec![
            FieldDef::new("username", "用户名", "Username", text(20))
                .required()
                .unique(),
            FieldDef::new("display_name", "姓名", "Display name", text(50)).required(),
            FieldDef::new("email", "邮箱", "Email", FieldType::Email).unique(),
            FieldDef::new("mobile", "手机", "Mobile", FieldType::Phone),
            FieldDef::new("manager_id", "直属上级", "Manager", relation("user")),
            FieldDef::new(
                "role_ids",
                "角色",
                "Roles",
                FieldType::MultiRelation { object: "role".into() },
            ),
            FieldDef::new("status", "状态", "Status", FieldType::State),
            read_only("last_login_at", "最近登录时间", "Last sign-in", FieldType::DateTime),
            read_only(
                "password_changed_at",
                "密码修改时间",
                "Password changed",
                FieldType::DateTime,
            ),
            read_only("locked_until", "锁定至", "Locked until", FieldType::DateTime),
            read_only(
                "email_verified_at",
                "邮箱验证时间",
                "Email verified",
                FieldType::DateTime,
            ),
            read_only(
                "totp_enabled",
                "已启用动态口令",
                "Authenticator enabled",
                FieldType::Boolean,
            ),
        ],
    )
    .title("display_name")
    .search(&["username", "display_name", "email", "mobile"])
    .sorted_by(&["username"])
    .with_state_machine(user_lifecycle())
}

/// Accounts: 待审核 → 正常 ⇄ 停用, and 锁定 after repeated failed sign-ins.
fn user_lifecycle() -> StateMachine {
    let admin = |mut t: Transition| {
        t.permission = Some("user.manage".into());
        t
    };
    StateMachine {
        field: "status".into(),
        initial: "active".into(),
        states: vec![
            state("pending", "待审核", "Pending approval"),
            state("active", "正常", "Active"),
            state("disabled", "停用", "Disabled"),
            state("locked", "锁定", "Locked"),
        ],
        transitions: vec![
            admin(transition("approve", "审核通过", "Approve", &["pending"], "active")),
            admin(transition(
                "disable",
                "停用",
                "Disable",
                &["pending", "active", "locked"],
                "disabled",
            )),
            admin(transition("enable", "启用", "Enable", &["disabled"], "active")),
            admin(transition("unlock", "解锁", "Unlock", &["locked"], "active")),
        ],
    }
}

/// A role: a named set of grants (object → action → data scope) and field rules.
pub fn role() -> ObjectDef {
    ObjectDef::new(
        "role",
        "roles",
        "角色",
        "Role",
        vec![
            FieldDef::new("name", "角色名称", "Name", text(50)).required().unique(),
            FieldDef::new("code", "角色编码", "Code", text(32)).unique(),
            FieldDef::new(
                "description",
                "说明",
                "Description",
                FieldType::LongText { max_len: 1000 },
            ),
            FieldDef::new("permissions", "权限", "Permissions", FieldType::Json),
            FieldDef::new("field_rules", "字段规则", "Field rules", FieldType::Json),
            FieldDef::new(
                "require_2fa",
                "要求双因素认证",
                "Require two-factor sign-in",
                FieldType::Boolean,
            ),
        ],
    )
    .title("name")
    .search(&["name", "code"])
    .sorted_by(&["name"])
}

/// A customer group (客户分组, seed 004 §9.2.1, catalogue §3.2): a named set of customers managed
/// together. Customers name their groups in their `groups` field. "Permissions for each group"
/// are the record's own: a group has an owner and a department like any record, so roles reach
/// groups by data scope (salespeople read their department's groups, managers manage their
/// department tree's).
pub fn customer_group() -> ObjectDef {
    ObjectDef::new(
        "customer_group",
        "customer_groups",
        "客户分组",
        "Customer group",
        vec![
            FieldDef::new("name", "分组名称", "Name", text(100)).required(),
            FieldDef::new("description", "说明", "Description", text(500)),
        ],
    )
    .title("name")
    .sorted_by(&["name"])
}

/// The customer (客户) per seed 000 §3.1 and PRODUCT.md module 2: number `CM` + six digits,
/// read-only, handed out by a numbering rule.
pub fn customer() -> ObjectDef {
    ObjectDef::new(
        "customer",
        "customers",
        "客户",
        "Customer",
        vec![
            FieldDef::new("number", "客户编号", "Customer number", text(32)).numbered(NumberingRule {
                prefix: "CM".into(),
                date_part: DatePart::None,
                separator: String::new(),
                width: 6,
            }),
            FieldDef::new("name", "客户名称", "Name", text(200)).required(),
            FieldDef::new("customer_type", "客户类型", "Type", select("customer_type")),
            FieldDef::new("level", "客户等级", "Level", select("customer_level")),
            FieldDef::new("industry", "所属行业", "Industry", select("industry")),
            FieldDef::new("source", "客户来源", "Source", select("customer_source")),
            FieldDef::new("credit_status", "信用状况", "Credit status", select("credit_status")),
            FieldDef::new("status", "客户状态", "Status", FieldType::State),
            FieldDef::new("phone", "联系电话", "Phone", FieldType::Phone),
            FieldDef::new("email", "邮箱", "Email", FieldType::Email),
            FieldDef::new("website", "网址", "Website", FieldType::Url),
            FieldDef::new("province", "省份", "Province", text(50)),
            FieldDef::new("city", "城市", "City", text(50)),
            FieldDef::new("district", "区县", "District", text(50)),
            FieldDef::new("address", "详细地址", "Address", text(300)),
            FieldDef::new(
                "credit_code",
                "统一社会信用代码",
                "Unified social credit code",
                text(18),
            )
            .unique(),
            FieldDef::new("registered_capital", "注册资本", "Registered capital", FieldType::Money),
            FieldDef::new("established_on", "成立日期", "Established on", FieldType::Date),
            FieldDef::new(
                "employee_count",
                "员工人数",
                "Employees",
                FieldType::Integer {
                    min: Some(0),
                    max: None,
                },
            ),
            FieldDef::new("is_key_account", "重点客户", "Key account", FieldType::Boolean),
            FieldDef::new(
                "last_contacted_at",
                "最近联系时间",
                "Last contacted",
                FieldType::DateTime,
            ),
            // Value classification (seed 000 §3.1.5 C-19/C-20, issue 5 §6): set by the
            // `customer.classify` job from the configured rules, never typed in.
            FieldDef::new("value_tier", "价值等级", "Value tier", select("customer_value_tier")).read_only(),
            // Editable until the order module maintains it from orders.
            FieldDef::new("total_amount", "累计成交金额", "Total amount", FieldType::Money),
            // Public pool (公海): when the current owner claimed the customer, and when and why it
            // last went back to the pool.
            FieldDef::new("claimed_at", "领取时间", "Claimed at", FieldType::DateTime).read_only(),
            FieldDef::new(
                "released_at",
                "退回公海时间",
                "Returned to pool at",
                FieldType::DateTime,
            )
            .read_only(),
            FieldDef::new("release_reason", "退回原因", "Reason returned", text(500)).read_only(),
            FieldDef::new(
                "tags",
                "标签",
                "Tags",
                FieldType::MultiSelect {
                    dict: "customer_tag".into(),
                },
            ),
            FieldDef::new(
                "groups",
                "客户分组",
                "Groups",
                FieldType::MultiRelation {
                    object: "customer_group".into(),
                },
            ),
            FieldDef::new(
                "attachments",
                "附件（营业执照、税务登记证）",
                "Attachments (business licence, tax certificate)",
                FieldType::Attachments {
                    max_files: 10,
                    max_size_bytes: 10 * 1024 * 1024,
                    allowed_extensions: ["pdf", "jpg", "jpeg", "png"].map(String::from).to_vec(),
                },
            ),
            FieldDef::new("extra", "扩展信息", "Extra data", FieldType::Json),
            FieldDef::new("remark", "备注", "Remark", FieldType::LongText { max_len: 4000 }),
            // Set when the customer was merged into another one (it then sits in the recycle
            // bin); cleared when the merge is undone.
            FieldDef::new("merged_into_id", "已合并到", "Merged into", relation("customer")).read_only(),
        ],
    )
    .title("name")
    .search(&["name", "number", "phone", "email"])
    .sorted_by(&["-id"])
    .with_state_machine(customer_lifecycle())
    .with_public_pool()
}

fn state(key: &str, zh: &str, en: &str) -> StateDef {
    StateDef {
        key: key.into(),
        label: Label::new(zh, en),
    }
}

fn transition(action: &str, zh: &str, en: &str, from: &[&str], to: &str) -> Transition {
    Transition {
        action: action.into(),
        label: Label::new(zh, en),
        from: from.iter().map(|s| (*s).to_owned()).collect(),
        to: to.into(),
        permission: None,
        remark_required: false,
    }
}

/// The customer lifecycle: 潜在 → 正式 → 休眠 / 流失, with reactivation.
fn customer_lifecycle() -> StateMachine {
    let mut mark_lost = transition(
        "mark_lost",
        "标记流失",
        "Mark as lost",
        &["prospect", "active", "dormant"],
        "lost",
    );
    mark_lost.permission = Some("customer.mark_lost".into());
    mark_lost.remark_required = true;
    StateMachine {
        field: "status".into(),
        initial: "prospect".into(),
        states: vec![
            state("prospect", "潜在", "Prospect"),
            state("active", "正式", "Active"),
            state("dormant", "休眠", "Dormant"),
            state("lost", "流失", "Lost"),
        ],
        transitions: vec![
            transition("sign", "签约转正", "Sign", &["prospect"], "active"),
            transition("make_dormant", "转为休眠", "Make dormant", &["active"], "dormant"),
            transition("reactivate", "重新激活", "Reactivate", &["dormant", "lost"], "active"),
            mark_lost,
        ],
    }
}

/// A contact person (联系人) of a customer.
pub fn contact() -> ObjectDef {
    ObjectDef::new(
        "contact",
        "contacts",
        "联系人",
        "Contact",
        vec![
            FieldDef::new("customer_id", "所属客户", "Customer", relation("customer")).required(),
            FieldDef::new("name", "姓名", "Name", text(50)).required(),
            FieldDef::new("title", "职务", "Title", text(50)),
            FieldDef::new("gender", "性别", "Gender", select("gender")),
            FieldDef::new("mobile", "手机", "Mobile", FieldType::Phone),
            FieldDef::new("phone", "办公电话", "Office phone", FieldType::Phone),
            FieldDef::new("email", "邮箱", "Email", FieldType::Email),
            FieldDef::new("birthday", "生日", "Birthday", FieldType::Date),
            FieldDef::new("is_key_person", "关键人", "Key person", FieldType::Boolean),
            FieldDef::new(
                "notes",
                "关系备注",
                "Relationship notes",
                FieldType::LongText { max_len: 2000 },
            ),
        ],
    )
    .title("name")
    .search(&["name", "mobile", "phone", "email"])
    .sorted_by(&["-id"])
    .searched_with("customer", "customer_id")
}

/// A lead (潜在客户, seed 001 M9 §3.1.2): a prospect not yet a customer. Conversion turns it
/// into a customer and a contact in one transaction; the lead's owner and name carry over
/// unchanged, and a converted lead is read-only (it stays for the lead report).
pub fn lead() -> ObjectDef {
    ObjectDef::new(
        "lead",
        "leads",
        "潜在客户",
        "Lead",
        vec![
            FieldDef::new("number", "线索编号", "Lead number", text(32)).numbered(NumberingRule {
                prefix: "XS".into(),
                date_part: DatePart::None,
                separator: String::new(),
                width: 6,
            }),
            FieldDef::new("name", "联系人姓名", "Contact name", text(50)).required(),
            FieldDef::new("company", "公司名称", "Company", text(200)),
            FieldDef::new("title", "职务", "Title", text(50)),
            FieldDef::new("mobile", "手机", "Mobile", FieldType::Phone),
            FieldDef::new("phone", "电话", "Phone", FieldType::Phone),
            FieldDef::new("email", "邮箱", "Email", FieldType::Email),
            FieldDef::new("source", "来源", "Source", select("customer_source")),
            FieldDef::new("industry", "所属行业", "Industry", select("industry")),
            FieldDef::new("province", "省份", "Province", text(50)),
            FieldDef::new("city", "城市", "City", text(50)),
            FieldDef::new("district", "区县", "District", text(50)),
            FieldDef::new("address", "地址", "Address", text(300)),
            FieldDef::new("status", "线索状态", "Status", FieldType::State),
            FieldDef::new(
                "converted_customer_id",
                "转化客户",
                "Converted to customer",
                relation("customer"),
            )
            .read_only(),
            FieldDef::new(
                "converted_contact_id",
                "转化联系人",
                "Converted to contact",
                relation("contact"),
            )
            .read_only(),
            FieldDef::new("converted_at", "转化时间", "Converted at", FieldType::DateTime).read_only(),
            FieldDef::new("remark", "备注", "Remark", FieldType::LongText { max_len: 4000 }),
        ],
    )
    .title("name")
    .search(&["name", "company", "number", "mobile", "email"])
    .sorted_by(&["-id"])
    .with_state_machine(lead_lifecycle())
}

fn lead_lifecycle() -> StateMachine {
    let mut disqualify = transition(
        "disqualify",
        "作废",
        "Disqualify",
        &["new", "contacted", "qualified"],
        "disqualified",
    );
    disqualify.remark_required = true;
    let mut convert = transition(
        "convert",
        "转化为客户",
        "Convert to customer",
        &["new", "contacted", "qualified"],
        "converted",
    );
    convert.permission = Some("lead.convert".into());
    StateMachine {
        field: "status".into(),
        initial: "new".into(),
        states: vec![
            state("new", "新线索", "New"),
            state("contacted", "已联系", "Contacted"),
            state("qualified", "已确认", "Qualified"),
            state("converted", "已转化", "Converted"),
            state("disqualified", "已作废", "Disqualified"),
        ],
        transitions: vec![
            transition("contact", "已联系", "Mark contacted", &["new"], "contacted"),
            transition("qualify", "确认有效", "Qualify", &["new", "contacted"], "qualified"),
            convert,
            disqualify,
            transition("reopen", "重新打开", "Reopen", &["disqualified"], "new"),
        ],
    }
}

/// A follow-up (跟进记录): a call, visit, email, meeting, note or task with a customer
/// (seed 001 M8, seed 004 ch. 5).
pub fn follow_up() -> ObjectDef {
    ObjectDef::new(
        "follow_up",
        "follow_ups",
        "跟进记录",
        "Follow-up",
        vec![
            FieldDef::new("customer_id", "客户", "Customer", relation("customer")).required(),
            FieldDef::new("contact_id", "联系人", "Contact", relation("contact")),
            FieldDef::new("kind", "方式", "Kind", select("activity_kind")).required(),
            FieldDef::new("subject", "主题", "Subject", text(200)).required(),
            FieldDef::new("occurred_at", "时间", "When", FieldType::DateTime).required(),
            FieldDef::new("place", "地点", "Place", text(200)),
            FieldDef::new("purpose", "目的", "Purpose", text(500)),
            FieldDef::new("content", "内容", "Content", FieldType::LongText { max_len: 10_000 }),
            FieldDef::new(
                "feedback",
                "客户反馈",
                "Customer feedback",
                FieldType::LongText { max_len: 4000 },
            ),
            FieldDef::new("next_step", "下一步", "Next step", text(500)),
            FieldDef::new("remind_at", "提醒时间", "Reminder", FieldType::DateTime),
            FieldDef::new("done", "已完成", "Done", FieldType::Boolean),
        ],
    )
    .title("subject")
    .search(&["subject"])
    .without_pinyin(&["subject"])
    .sorted_by(&["-occurred_at"])
}

/// A care action (客户关怀, seed 004 ch. 5): birthday, holiday or custom care by phone, SMS,
/// email or gift.
pub fn care_action() -> ObjectDef {
    ObjectDef::new(
        "care_action",
        "care_actions",
        "客户关怀",
        "Care action",
        vec![
            FieldDef::new("customer_id", "客户", "Customer", relation("customer")).required(),
            FieldDef::new("contact_id", "联系人", "Contact", relation("contact")),
            FieldDef::new("occasion", "关怀类型", "Occasion", select("care_occasion")).required(),
            FieldDef::new("channel", "方式", "Channel", select("care_channel")).required(),
            FieldDef::new("planned_on", "计划日期", "Planned on", FieldType::Date).required(),
            FieldDef::new("done_on", "执行日期", "Done on", FieldType::Date),
            FieldDef::new("content", "内容", "Content", FieldType::LongText { max_len: 4000 }),
            FieldDef::new("cost", "费用", "Cost", FieldType::Money),
        ],
    )
    .title("occasion")
    .sorted_by(&["-planned_on"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_and_tables_are_unique() {
        let objects = builtin_objects();
        for (i, a) in objects.iter().enumerate() {
            for b in &objects[i + 1..] {
                assert_ne!(a.key, b.key);
                assert_ne!(a.table, b.table);
            }
        }
    }

    #[test]
    fn declared_references_point_at_declared_objects_and_fields() {
        let objects = builtin_objects();
        for o in &objects {
            assert!(o.field(&o.title_field).is_some(), "{} title", o.key);
            for s in o.search_fields.iter().chain(o.default_sort.iter()) {
                assert!(o.field(s.trim_start_matches('-')).is_some(), "{} {s}", o.key);
            }
            for f in &o.fields {
                if let FieldType::Relation { object } = &f.field_type {
                    assert!(objects.iter().any(|x| &x.key == object), "{}.{}", o.key, f.key);
                }
            }
            if let Some(m) = &o.state_machine {
                assert!(o.field(&m.field).is_some());
                assert!(m.has_state(&m.initial));
                for t in &m.transitions {
                    assert!(m.has_state(&t.to));
                    assert!(t.from.iter().all(|s| m.has_state(s)));
                }
            }
        }
    }
}
