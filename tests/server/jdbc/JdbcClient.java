// A JDBC client of `sluice serve`, as BI tools use it: MariaDB Connector/J (Debian's
// libmariadb-java) with server-side prepared statements. Run by tests/server/test_drivers.py:
//   java -cp mariadb-java-client.jar JdbcClient.java PORT PASSWORD KAFKA_URI
// Prints one line per fact the test checks.
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;

public class JdbcClient {
  public static void main(String[] args) throws Exception {
    String url = "jdbc:mariadb://127.0.0.1:" + args[0] + "/main?user=root&password=" + args[1]
        + "&useServerPrepStmts=true";
    try (Connection c = DriverManager.getConnection(url)) {
      DatabaseMetaData md = c.getMetaData();
      System.out.println("product " + md.getDatabaseProductName());
      try (ResultSet r = md.getTables(null, null, "%", new String[] {"TABLE"})) {
        while (r.next()) System.out.println("table " + r.getString("TABLE_NAME"));
      }
      try (ResultSet r = md.getColumns(null, null, "readings", "%")) {
        while (r.next()) {
          System.out.println("column " + r.getString("COLUMN_NAME") + " " + r.getString("TYPE_NAME")
              + " " + r.getInt("DATA_TYPE") + " " + r.getString("IS_NULLABLE"));
        }
      }
      try (ResultSet r = md.getPrimaryKeys(null, null, "readings")) {
        while (r.next()) System.out.println("key " + r.getString("COLUMN_NAME"));
      }
      try (Statement s = c.createStatement();
          ResultSet r = s.executeQuery("SELECT count(*), sum(v) FROM readings")) {
        r.next();
        System.out.println("query " + r.getLong(1) + " " + r.getDouble(2));
      }
      String sql = "SELECT id, name, v FROM readings WHERE id >= ? AND name <> ? ORDER BY id";
      try (PreparedStatement p = c.prepareStatement(sql)) {
        p.setInt(1, 2);
        p.setString(2, "nobody");
        try (ResultSet r = p.executeQuery()) {
          while (r.next()) {
            System.out.println("prepared " + r.getInt(1) + " " + r.getString(2) + " " + r.getDouble(3));
          }
        }
      }
      try (Statement s = c.createStatement()) {
        s.execute("CREATE PIPELINE jdbc_p AS LOAD DATA KAFKA '" + args[2] + "' "
            + "INTO TABLE readings FORMAT JSON (id <- id, name <- name, v <- v)");
        s.execute("START PIPELINE jdbc_p");
        long loaded = 0;
        for (int i = 0; i < 600 && loaded < 5; i++) {  // up to 60 s
          try (ResultSet r = s.executeQuery("SELECT count(*) FROM readings WHERE id >= 100")) {
            r.next();
            loaded = r.getLong(1);
          }
          if (loaded < 5) Thread.sleep(100);
        }
        System.out.println("loaded " + loaded);
        try (ResultSet r = s.executeQuery("SHOW PIPELINES")) {
          while (r.next()) System.out.println("pipeline " + r.getString(1) + " " + r.getString(2));
        }
        s.execute("STOP PIPELINE jdbc_p");
      }
    }
    System.out.println("done");
  }
}
