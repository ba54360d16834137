// A file whose top level throws: jest runs none of its tests.
throw new Error("cannot load fixtures/orders.json");
