use super::*;

fn container<'a>(database: &'a str, container: &'a str) -> Target<'a> {
    Target::Container {
        database,
        container,
    }
}

fn exact(name: &str) -> Name {
    Name::Exact(name.to_owned())
}

#[test]
fn the_three_scope_shapes_parse() {
    assert_eq!(Scope::parse("/"), Ok(Scope::Account));
    assert_eq!(
        Scope::parse("/dbs/shop"),
        Ok(Scope::Database(exact("shop")))
    );
    assert_eq!(
        Scope::parse("/dbs/shop/colls/orders"),
        Ok(Scope::Container {
            database: exact("shop"),
            container: exact("orders"),
        })
    );
}

#[test]
fn a_star_in_a_name_makes_it_a_pattern() {
    assert_eq!(
        Scope::parse("/dbs/tenant-*/colls/orders"),
        Ok(Scope::Container {
            database: Name::Pattern(Glob::new("tenant-*")),
            container: exact("orders"),
        })
    );
    assert!(Scope::parse("/dbs/*").is_ok());
    assert!(Scope::parse("/dbs/shop/colls/*").is_ok());
}

#[test]
fn malformed_scopes_are_rejected() {
    for bad in [
        "",
        "dbs/shop",
        "/dbs",
        "/dbs/",
        "/dbs/shop/",
        "/dbs/shop/colls",
        "/dbs/shop/colls/",
        "/dbs/shop/colls/orders/docs",
        "/DBS/shop",
        "/dbs/shop/COLLS/orders",
        "//dbs/shop",
        "/dbs//colls/orders",
        "/dbs/../colls/orders",
        "/dbs/shop/colls/.",
        "/dbs/shop/colls/a\\b",
        "/dbs/shop/colls/a?b",
        "/dbs/shop/colls/a#b",
        "/dbs/shop/colls/a\u{0}b",
        "/*",
        "*",
    ] {
        assert!(Scope::parse(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn account_scope_covers_everything() {
    let scope = Scope::Account;
    assert!(scope.covers(Target::Account));
    assert!(scope.covers(Target::Database("shop")));
    assert!(scope.covers(container("shop", "payroll")));
}

#[test]
fn database_scope_covers_the_database_and_its_containers_only() {
    let scope = Scope::parse("/dbs/shop").expect("valid scope");
    assert!(scope.covers(Target::Database("shop")));
    assert!(scope.covers(container("shop", "orders")));
    assert!(!scope.covers(Target::Account));
    assert!(!scope.covers(Target::Database("shop2")));
    assert!(!scope.covers(Target::Database("Shop")));
    assert!(!scope.covers(container("shopping", "orders")));
}

#[test]
fn container_scope_covers_that_container_only() {
    let scope = Scope::parse("/dbs/shop/colls/orders").expect("valid scope");
    assert!(scope.covers(container("shop", "orders")));
    assert!(!scope.covers(container("shop", "orders-archive")));
    assert!(!scope.covers(container("shop", "order")));
    assert!(!scope.covers(container("shop", "Orders")));
    assert!(!scope.covers(container("other", "orders")));
    assert!(!scope.covers(Target::Database("shop")));
    assert!(!scope.covers(Target::Account));
}

#[test]
fn pattern_scopes_cover_the_names_they_match_and_nothing_else() {
    let scope = Scope::parse("/dbs/tenant-*/colls/orders").expect("valid scope");
    assert!(scope.covers(container("tenant-1", "orders")));
    assert!(scope.covers(container("tenant-", "orders")));
    assert!(!scope.covers(container("tenant", "orders")));
    assert!(!scope.covers(container("Tenant-1", "orders")));
    assert!(!scope.covers(container("tenant-1", "orders-archive")));
    assert!(!scope.covers(container("xtenant-1", "orders")));
    assert!(!scope.covers(Target::Database("tenant-1")));
    assert!(scope.is_container_in("tenant-1"));
    assert!(!scope.is_container_in("shop"));

    let scope = Scope::parse("/dbs/shop/colls/orders-*").expect("valid scope");
    assert!(scope.covers(container("shop", "orders-2024")));
    assert!(!scope.covers(container("shop", "orders")));
    assert!(!scope.covers(container("shop2", "orders-2024")));
}

#[test]
fn a_database_pattern_covers_matching_databases_and_their_containers() {
    let scope = Scope::parse("/dbs/tenant-*").expect("valid scope");
    assert!(scope.covers(Target::Database("tenant-7")));
    assert!(scope.covers(container("tenant-7", "anything")));
    assert!(!scope.covers(Target::Database("shop")));
    assert!(!scope.covers(Target::Account));
}

#[test]
fn scopes_display_as_written() {
    for text in [
        "/",
        "/dbs/shop",
        "/dbs/shop/colls/orders",
        "/dbs/t-*/colls/*-x",
    ] {
        let scope = Scope::parse(text).expect("valid scope");
        assert_eq!(scope.to_string(), text);
    }
}
