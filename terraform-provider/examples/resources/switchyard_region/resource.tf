resource "switchyard_region" "eu" {
  name          = "eu-west-1"
  display_name  = "Ireland"
  kafka_brokers = ["kafka-1.eu.internal:9092", "kafka-2.eu.internal:9092"]
}
