//! The demo's services, ports and Dataplane documents.

/// The control-plane API the demo starts (the CLI's default, so `weft get` just works).
pub const API_URL: &str = "http://127.0.0.1:5681";
/// The frontend's proxy inbound: where a person sends requests.
pub const ENTRY_URL: &str = "http://127.0.0.1:20001/";

/// One demo workload and its proxy.
pub struct DemoService {
    pub service: &'static str,
    pub instance: &'static str,
    pub app_port: u16,
    pub inbound_port: u16,
    pub admin_port: u16,
    /// The service this one calls, and the local outbound port it calls it on.
    pub calls: Option<(&'static str, u16)>,
}

/// Started in this order: callees before callers.
pub const DEMO_SERVICES: &[DemoService] = &[
    DemoService {
        service: "store",
        instance: "store-1",
        app_port: 8084,
        inbound_port: 20004,
        admin_port: 9904,
        calls: None,
    },
    DemoService {
        service: "backend",
        instance: "backend-1",
        app_port: 8082,
        inbound_port: 20002,
        admin_port: 9902,
        calls: Some(("store", 30003)),
    },
    DemoService {
        service: "backend",
        instance: "backend-2",
        app_port: 8083,
        inbound_port: 20003,
        admin_port: 9903,
        calls: Some(("store", 30004)),
    },
    DemoService {
        service: "frontend",
        instance: "frontend-1",
        app_port: 8081,
        inbound_port: 20001,
        admin_port: 9901,
        calls: Some(("backend", 30002)),
    },
];

impl DemoService {
    pub fn app_args(&self) -> Vec<String> {
        let mut args = vec![
            "demo-app".to_owned(),
            "--name".to_owned(),
            self.instance.to_owned(),
            "--port".to_owned(),
            self.app_port.to_string(),
        ];
        if let Some((_, port)) = self.calls {
            args.push("--call".to_owned());
            args.push(format!("http://127.0.0.1:{port}/"));
        }
        args
    }

    pub fn dataplane_yaml(&self) -> String {
        let outbound = match self.calls {
            Some((service, port)) => format!(
                "  outbound:\n    - port: {port}\n      service: {service}\n      protocol: http\n"
            ),
            None => String::new(),
        };
        format!(
            "type: Dataplane\nmesh: default\nname: {instance}\nnetworking:\n  address: 127.0.0.1\n  \
             inbound:\n    - port: {inbound}\n      servicePort: {app}\n      tags: {{ service: {service}, protocol: http }}\n\
             {outbound}  admin: {{ port: {admin} }}\n",
            instance = self.instance,
            inbound = self.inbound_port,
            app = self.app_port,
            service = self.service,
            admin = self.admin_port,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_dataplane_is_valid() {
        for svc in DEMO_SERVICES {
            let parsed = weft_api::document::parse_resources(&svc.dataplane_yaml());
            assert!(parsed.is_ok(), "{}: {:?}", svc.instance, parsed.err());
        }
    }
}
