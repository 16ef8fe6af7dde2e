namespace GTStore.Protocol.Resp;

/// <summary>
/// How much of a partly arrived multibulk request <see cref="RespParser"/> has already checked:
/// kept by a connection between reads so that a large request is not re-checked from its start
/// on every read. Opaque; <c>default</c> means nothing checked.
/// </summary>
public struct RespParseProgress
{
    internal RespParseProgress(long count, long checkedArgs, long checkedBytes)
    {
        Count = count;
        CheckedArgs = checkedArgs;
        CheckedBytes = checkedBytes;
    }

    /// <summary>Arguments the request announced.</summary>
    internal long Count { get; }

    /// <summary>Leading arguments known complete and well formed.</summary>
    internal long CheckedArgs { get; }

    /// <summary>Bytes from the request's start to the end of those arguments.</summary>
    internal long CheckedBytes { get; }
}
