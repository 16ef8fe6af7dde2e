namespace GTStore.Node.Tests;

/// <summary>A test that needs one of Redis's tools; skipped, saying how to install it, only when the tool is absent.</summary>
public sealed class RedisToolFactAttribute : FactAttribute
{
    public RedisToolFactAttribute(string tool)
    {
        bool present = (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, tool)));
        if (!present)
        {
            Skip = $"{tool} is not installed: apt-get install redis-tools (.ci/run installs it)";
        }
    }
}
