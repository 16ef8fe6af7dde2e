using GTStore.Cli;

var root = Commands.Build();
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    foreach (var error in parsed.Errors)
        Console.Error.WriteLine("gtstore: " + error.Message);
    Console.Error.WriteLine("Run 'gtstore --help' for usage.");
    return 2;
}
try
{
    return await parsed.InvokeAsync(new System.CommandLine.InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (CliException e)
{
    Console.Error.WriteLine("gtstore: " + e.Message);
    return e.ExitCode;
}
