-- Pipeline statements in the shapes SingleStore's documentation shows them (CREATE PIPELINE,
-- its sources and formats, ALTER / START / STOP / TEST / EXTRACT / PROFILE / SHOW, links),
-- written out for Sluice's tests: every one must parse, render and parse back the same.
-- Host names, buckets and keys are placeholders.

-- Kafka
CREATE PIPELINE mypipeline AS LOAD DATA KAFKA '127.0.0.1/my-topic' INTO TABLE my_table;
CREATE PIPELINE `quickstart_kafka` AS LOAD DATA KAFKA '<Kafka_cluster_IP>:9092/test' INTO TABLE `messages`;
CREATE PIPELINE p AS LOAD DATA KAFKA 'host1.example.com:9092,host2.example.com:9092/my-topic' INTO TABLE t;
CREATE PIPELINE p AS LOAD DATA KAFKA "kafka-host:9092/events" INTO TABLE db1.events FORMAT JSON (id <- id, payload <- %);
CREATE OR REPLACE PIPELINE IF NOT EXISTS db1.p AS LOAD DATA KAFKA 'host.example.com/my-topic'
  CONFIG '{"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "ssl.ca.location": "/var/private/ssl/ca-cert.pem"}'
  CREDENTIALS '{"sasl.username": "my-user", "sasl.password": "my-password"}'
  INTO TABLE t;
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic'
  CONFIG '{"security.protocol": "ssl", "ssl.certificate.location": "/var/private/ssl/client.pem", "ssl.key.location": "/var/private/ssl/client.key"}'
  CREDENTIALS '{"ssl.key.password": "abcdefgh"}'
  BATCH_INTERVAL 2500 MAX_PARTITIONS_PER_BATCH 4 MAX_RETRIES_PER_BATCH_PARTITION 3
  MAX_OFFSETS_PER_BATCH_PARTITION 10000
  INTO TABLE t FIELDS TERMINATED BY ',';
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' WITH TRANSFORM ('http://www.example.com/my-transform-tarball.tar.gz', 'my-executable.py', '') INTO TABLE t;
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' WITH TRANSFORM ('file://localhost/root/path/to/my-transform.py', '', '') INTO TABLE t;
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' SKIP DUPLICATE KEY ERRORS INTO TABLE t;
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' SKIP PARSER ERRORS INTO TABLE t FORMAT JSON (a <- a);
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' SKIP ALL ERRORS STOP_ON_ERROR OFF INTO TABLE t;
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' REPLACE INTO TABLE t FORMAT JSON (id <- id, v <- v);
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' IGNORE INTO TABLE t;
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' RESOURCE POOL pipelines_pool INTO TABLE t;
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' ENABLE OUT_OF_ORDER OPTIMIZATION INTO TABLE t;
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' DISABLE OFFSETS METADATA GC INTO TABLE t;
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' RETRY_OPTIONS '{"exponential_factor": 2, "max_retry_interval": 120}' INTO TABLE t;
CREATE AGGREGATOR PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' INTO TABLE t;
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' INTO TABLE t
  (id, @name, @ts) SET name = upper(@name), created = FROM_UNIXTIME(@ts) WHERE id > 0;
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' INTO TABLE t
  FORMAT JSON (id <- id, name <- name DEFAULT 'unknown', city <- address::city, zip <- address::zip DEFAULT NULL)
  ON DUPLICATE KEY UPDATE name = VALUES(name);
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' INTO TABLE t
  FORMAT JSON (@json <- %) SET doc = @json, kind = JSON_EXTRACT_STRING(@json, 'kind');
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' INTO TABLE t
  FORMAT JSON (id <- id) SET offset_col = get_kafka_pipeline_prop('prop_offset'), batch = pipeline_batch_id();
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' INTO PROCEDURE my_proc FORMAT JSON (id <- id, v <- v);

-- Avro
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' INTO TABLE t
  FORMAT AVRO SCHEMA REGISTRY 'host.example.com:8081'
  (id <- %::id, color <- %::color, input_timestamp <- %::input_timestamp);
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' INTO TABLE t
  FORMAT AVRO (id <- %::id, name <- %::name)
  SCHEMA '{"type": "record", "name": "data", "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}]}';
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' INTO TABLE t
  FORMAT AVRO SCHEMA REGISTRY 'https://registry.example.com:8081'
  (id <- %::id, value <- %::u::string, n <- %::u::long);
CREATE PIPELINE p AS LOAD DATA FS '/data/avro/*.avro' INTO TABLE t FORMAT AVRO (id <- %::id, nested <- %::rec::field);
CREATE PIPELINE p AS LOAD DATA S3 'my-bucket/avro/' CONFIG '{"region": "us-east-1"}'
  CREDENTIALS '{"aws_access_key_id": "key", "aws_secret_access_key": "secret"}'
  INTO TABLE t FORMAT AVRO (id <- %::id);

-- S3 and Parquet
CREATE PIPELINE library AS LOAD DATA S3 'my-bucket-name' CONFIG '{"region": "us-west-1"}'
  CREDENTIALS '{"aws_access_key_id": "your_access_key_id", "aws_secret_access_key": "your_secret_access_key"}'
  INTO TABLE `classic_books` FIELDS TERMINATED BY ',';
CREATE OR REPLACE PIPELINE tpch_100_lineitem AS LOAD DATA S3 'memsql-tpch-dataset/sf_100/lineitem/'
  config '{"region":"us-east-1"}' SKIP DUPLICATE KEY ERRORS INTO TABLE lineitem
  FIELDS TERMINATED BY '|' LINES TERMINATED BY '|\n';
CREATE PIPELINE p AS LOAD DATA S3 'my-bucket/path/*.csv' CONFIG '{"region": "us-east-1", "endpoint_url": "http://127.0.0.1:9000"}'
  CREDENTIALS '{"aws_access_key_id": "k", "aws_secret_access_key": "s", "aws_session_token": "t"}'
  INTO TABLE t FIELDS TERMINATED BY ',' ENCLOSED BY '"' LINES TERMINATED BY '\r\n' IGNORE 1 LINES;
CREATE PIPELINE p AS LOAD DATA S3 'my-bucket/data.parquet' CONFIG '{"region": "us-east-1"}'
  CREDENTIALS '{"aws_access_key_id": "k", "aws_secret_access_key": "s"}'
  INTO TABLE t (c1 <- col1, c2 <- col2 DEFAULT 0, c3 <- struct_col::inner) FORMAT PARQUET;
CREATE PIPELINE p AS LOAD DATA S3 'my-bucket/data.parquet' CONFIG '{"region": "us-east-1"}'
  INTO TABLE t FORMAT PARQUET (c1 <- col1, @c2 <- col2) SET c2 = @c2 * 2;
CREATE PIPELINE p AS LOAD DATA S3 'my-bucket/logs/*.gz' CONFIG '{"region": "us-east-1"}' INTO TABLE t FORMAT JSON (msg <- msg);

-- Filesystem
CREATE PIPELINE library AS LOAD DATA FS '/path/to/files/*' INTO TABLE `classic_books` FIELDS TERMINATED BY ',';
CREATE PIPELINE p AS LOAD DATA FS '/data/books.csv' INTO TABLE books
  COLUMNS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '"' ESCAPED BY '\\' LINES STARTING BY 'xxx' TERMINATED BY '\n' IGNORE 1 LINES;
CREATE PIPELINE p AS LOAD DATA FS '/data/*.csv' INTO TABLE t LINES TERMINATED BY '\n' FIELDS TERMINATED BY ',';
CREATE PIPELINE p AS LOAD DATA FS '/data/*.csv' INTO TABLE t FIELDS TERMINATED BY ',' NULL DEFINED BY 'NULL' (a, b, @skip);
CREATE PIPELINE p AS LOAD DATA FS '/data/*.csv' INTO TABLE t FIELDS TERMINATED BY ',' TRAILING NULLCOLS;
CREATE PIPELINE p AS LOAD DATA FS '/data/*.csv' INTO TABLE t FORMAT CSV FIELDS TERMINATED BY ',';
CREATE PIPELINE p AS LOAD DATA FS '/data/*.json' INTO TABLE t FORMAT JSON (a <- a, b <- b::`odd key` DEFAULT 'x');
CREATE PIPELINE p AS LOAD DATA FS '/data/*.tsv' INTO TABLE t (a, b) SET c = CONCAT(a, '-', b), d = pipeline_source_file();

-- Azure, GCS, HDFS, Stage, links
CREATE PIPELINE library AS LOAD DATA AZURE 'my-container-name'
  CREDENTIALS '{"account_name": "your_account_name", "account_key": "your_account_key"}'
  INTO TABLE `classic_books` FIELDS TERMINATED BY ',';
CREATE PIPELINE p AS LOAD DATA AZURE 'container/path/*.json' CONFIG '{"suffixes": ["json"]}'
  CREDENTIALS '{"account_name": "n", "sas_token": "sv=2021"}' INTO TABLE t FORMAT JSON (a <- a);
CREATE PIPELINE library AS LOAD DATA GCS 'my-bucket-name'
  CREDENTIALS '{"access_id": "your_google_access_key", "secret_key": "your_google_secret_key"}'
  INTO TABLE `classic_books` FIELDS TERMINATED BY ',';
CREATE PIPELINE my_pipeline AS LOAD DATA HDFS 'hdfs://hadoop-namenode:8020/path/to/files'
  INTO TABLE `my_table` FIELDS TERMINATED BY '\t';
CREATE PIPELINE p AS LOAD DATA HDFS 'hdfs://namenode:8020/data/*' CONFIG '{"kerberos.principal": "user@EXAMPLE.COM"}' INTO TABLE t;
CREATE PIPELINE books_pipe AS LOAD DATA STAGE 'data/books.csv' INTO TABLE books FIELDS TERMINATED BY ',' IGNORE 1 LINES;
CREATE PIPELINE p AS LOAD DATA LINK my_s3_link 'my-bucket/path/' INTO TABLE t FIELDS TERMINATED BY ',';
CREATE PIPELINE p AS LOAD DATA LINK db1.my_kafka_link 'host.example.com/my-topic' INTO TABLE t FORMAT JSON (a <- a);
CREATE PIPELINE p AS LOAD DATA MONGODB 'db.collection' CONFIG '{"mongodb.hosts": "host:27017"}' CREDENTIALS '{"mongodb.password": "x"}' INTO TABLE t FORMAT AVRO (id <- %::id);
CREATE PIPELINE p AS LOAD DATA MYSQL 'db.table' CONFIG '{"database.hostname": "host"}' INTO TABLE t FORMAT AVRO (id <- %::id);
CREATE PIPELINE p AS LOAD DATA RABBITMQ 'localhost:5552/readings' INTO TABLE t FORMAT JSON (a <- a);

CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' INTO TABLE t
  FIELDS TERMINATED BY '\t' ENCLOSED BY '' ESCAPED BY '\\' LINES TERMINATED BY '\n' STARTING BY '';
CREATE PIPELINE p AS LOAD DATA KAFKA 'host.example.com/my-topic' INTO TABLE t
  FORMAT JSON (id <- id, tags <- tags DEFAULT '[]', active <- flags::active DEFAULT FALSE)
  SET tag_count = JSON_LENGTH(tags) WHERE active = 1;
CREATE PIPELINE p AS LOAD DATA FS '/data/*.csv' INTO TABLE t FIELDS TERMINATED BY ',' (id, @dt) SET dt = STR_TO_DATE(@dt, '%m/%d/%Y');
CREATE PIPELINE p AS LOAD DATA S3 'bucket/folder/' CONFIG '{"region": "us-east-1", "suffixes": ["csv"]}' CREDENTIALS '{"role_arn": "arn:aws:iam::123:role/r"}' INTO TABLE t FIELDS TERMINATED BY ',';

-- lifecycle and monitoring
START PIPELINE mypipeline;
START PIPELINE IF NOT RUNNING db1.mypipeline;
START PIPELINE mypipeline FOREGROUND;
START PIPELINE mypipeline FOREGROUND LIMIT 1 BATCHES;
START ALL PIPELINES;
STOP PIPELINE mypipeline;
STOP PIPELINE IF RUNNING mypipeline;
STOP ALL PIPELINES;
TEST PIPELINE mypipeline;
TEST PIPELINE mypipeline LIMIT 1;
DROP PIPELINE mypipeline;
DROP PIPELINE IF EXISTS db1.mypipeline;
SHOW PIPELINES;
SHOW PIPELINES LIKE 'my%';
SHOW CREATE PIPELINE mypipeline;
SHOW CREATE PIPELINE mypipeline EXTENDED;
SHOW CREATE PIPELINE db1.mypipeline;
TEST PIPELINE mypipeline LIMIT 5 STAGES;
EXTRACT PIPELINE p INTO OUTFILE 'transform_output';
EXTRACT PIPELINE p FROM '6' INTO OUTFILE 'transform_output';
EXTRACT PIPELINE p FROM '10' OFFSETS 0 TO 6 INTO OUTFILE 'transform_output';
PROFILE PIPELINE mypipeline;
CLEAR PIPELINE ERRORS;
CLEAR PIPELINE ERRORS mypipeline;
REPLAY ERRORS FOR PIPELINE mypipeline;

-- ALTER PIPELINE
ALTER PIPELINE mypipeline SET OFFSETS EARLIEST;
ALTER PIPELINE mypipeline SET OFFSETS LATEST;
ALTER PIPELINE mypipeline SET OFFSETS '{"0":100,"1":100}';
ALTER PIPELINE mypipeline SET OFFSETS '{"/data/file1.csv": 1}';
ALTER PIPELINE mypipeline SET TRANSFORM ('http://www.example.com/my-transform-tarball.tar.gz', 'my-executable.py', '-arg1 -arg1');
ALTER PIPELINE mypipeline SET TRANSFORM ('http://www.example.com/my-transform-tarball.tar.gz');
ALTER PIPELINE mypipeline SET BATCH_INTERVAL 0;
ALTER PIPELINE mypipeline SET MAX_PARTITIONS_PER_BATCH 10;
ALTER PIPELINE mypipeline SET MAX_OFFSETS_PER_BATCH_PARTITION 500, MAX_RETRIES_PER_BATCH_PARTITION 5;
ALTER PIPELINE mypipeline SET RESOURCE POOL new_pool;
ALTER PIPELINE mypipeline SET CONFIG '{"region": "us-east-2"}';
ALTER PIPELINE mypipeline SET CREDENTIALS '{"aws_access_key_id": "new", "aws_secret_access_key": "new"}';
ALTER PIPELINE mypipeline SET CONFIG ::`sasl.mechanism` = 'SCRAM-SHA-512';
ALTER PIPELINE mypipeline SET CREDENTIALS ::`sasl.password` = 'new', ::`sasl.username` = 'me';
ALTER PIPELINE mypipeline SET LINK other_link;
ALTER PIPELINE mypipeline SET OFFSET CURSOR committed;
ALTER PIPELINE mypipeline SET BATCH_MATCHES_SNAPSHOT ON;
ALTER PIPELINE mypipeline SET RETRY_OPTIONS '{"max_retry_interval": 60}';
ALTER PIPELINE mypipeline ENABLE OUT_OF_ORDER OPTIMIZATION;
ALTER PIPELINE mypipeline DISABLE OFFSETS METADATA GC;
ALTER PIPELINE mypipeline STOP_ON_ERROR ON;
ALTER PIPELINE mypipeline STOP_ON_ERROR NONE;
ALTER PIPELINE mypipeline RELOAD TRANSFORM;
ALTER PIPELINE mypipeline DROP FILE 'my_file';
ALTER PIPELINE mypipeline DROP PARTITION '2';
ALTER PIPELINE mypipeline DROP ORPHAN FILES;
ALTER PIPELINE mypipeline DROP ORPHAN PARTITIONS;
ALTER PIPELINE mypipeline FIELDS TERMINATED BY ',' ENCLOSED BY '"' ESCAPED BY '\\';
ALTER PIPELINE mypipeline LINES STARTING BY '>' TERMINATED BY '\r\n';

-- links
CREATE LINK product_S3 AS S3 CREDENTIALS '{"aws_access_key_id": "key", "aws_secret_access_key": "secret"}' CONFIG '{"region": "us-east-1"}' DESCRIPTION 'Product list';
CREATE LINK db1.kafka_link AS KAFKA CONFIG '{"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"}' CREDENTIALS '{"sasl.username": "u", "sasl.password": "p"}';
CREATE LINK IF NOT EXISTS azure_link AS AZURE CREDENTIALS '{"account_name": "n", "account_key": "k"}';
CREATE OR REPLACE LINK gcs_link AS GCS CREDENTIALS '{"access_id": "a", "secret_key": "s"}' CONFIG '{}';
CREATE LINK hdfs_link AS HDFS CONFIG '{"hadoop.security.authentication": "kerberos"}' CREDENTIALS '{}';
CREATE LINK http_link AS HTTP CREDENTIALS '{"headers": {"Authorization": "Bearer x"}}';
SHOW LINKS;
SHOW LINKS ON Orderdb;
DROP LINK product_S3;
DROP LINK IF EXISTS db1.kafka_link;
