// The sample CRM's "database": customers by phone number.
export const CUSTOMERS = {
  "+15550100": { name: "Grace Hopper", account: "ACME-0001", tier: "Gold", openCases: 1 },
  "+15550101": { name: "Alan Turing", account: "ACME-0002", tier: "Silver", openCases: 0 },
  "+15550102": { name: "Katherine Johnson", account: "ACME-0003", tier: "Platinum", openCases: 3 },
};
